"""Per-latent log-volumes and singular values of a generator's Jacobian.

``log_volume(z) = 1/2 * log det(J(z)^T J(z)) = sum_i log sigma_i(J(z))`` (``docs/design.md#log-volume``): the log
of the factor by which the generator scales d-dimensional volume at ``z``. Under naive sampling ``z ~ p`` the
generated manifold carries density ``p(z) / exp(log_volume(z))``; MaGNET (Humayun, Balestriero & Baraniuk,
ICLR 2022, §3) reweights by this volume to make outputs area-uniform, and Polarity Sampling (Humayun et al.,
CVPR 2022, §3) raises it to a power ``rho`` and keeps only the ``top_k`` largest singular values.

Numerics (method ``"exact"``): ``J`` is cast to float64 and the Gram matrix ``J^T J`` is factorised by Cholesky,
``log_volume = sum_i log L_ii``, wherever that is as accurate as ``J`` itself; every other latent (a failed Cholesky,
or a condition number past :func:`gram_condition_limit`) gets the singular values of the float64 ``J``, a
reduction 2.3x slower at ``d = 100`` (``benchmarks/RESULTS.md``). The rule, derived in ``docs/geometry.md``
(errors in nats, ``eps`` the machine epsilon):

* Gram route: forming and factorising ``J^T J`` in float64 is backward stable (Higham, *Accuracy and Stability of
  Numerical Algorithms*, 2nd ed., §3.5 and Thm. 10.3): ``L L^T = J^T J + E``, ``||E|| ~ eps64 ||J||^2``, and
  ``1/2 tr((J^T J)^-1 E)`` moves the log-volume by up to ``d * eps64 * kappa^2``.
* The Jacobian's own error: ``J`` was computed in its dtype, ``J + F`` with ``||F|| ~ eps_J ||J||``, and each
  ``log sigma_i`` moves by up to ``||F|| / sigma_i``: up to ``d * eps_J * kappa``.
* So the Gram route is as good as ``J`` wherever ``kappa <= eps_J / eps64`` (5e8 for float32 ``J``). For float64
  ``J`` that is never (``kappa >= 1``), so there the Gram route is kept only while its own bound stays below
  :data:`GRAM_FLOOR_NATS` (``kappa <= sqrt(1e-10 / (d * eps64))``, 270 at ``d = 6``). Both limits are capped at the
  rank tolerance ``1 / rtol``: past it the SVD decides whether the latent is rank deficient. For float32 ``J`` the
  cap is what binds (``1 / (d * eps32) = 8.4e4`` at ``d = 100``): up to it the Gram route's error stays below
  ``eps64 / (d * eps32^2) = 0.016 / d`` nats, where ``J``'s own reaches a nat.

``kappa(J) < limit`` is certified without an SVD by one more Cholesky, of ``J^T J`` shifted down by
``min(||J^T J||_F, ||J^T J||_1) / limit^2`` (:func:`condition_certified`); the Frobenius bound
``||J||_F ||L^-1||_F`` used before overstated ``kappa`` 4.5-8.8x on d = 100 spectra and cost a triangular inverse.
A latent whose smallest singular value is at or below ``rtol * sigma_max`` with
``rtol = d * eps(dtype of J)`` is rank deficient and gets ``-inf``: never NaN, never an exception.
``log(det(...))`` is never formed, so nothing overflows (``d = 512`` latents with ``sigma ~ 10`` give
``log_volume ~ 1200``, far past ``exp``'s range).

Methods (:data:`METHODS`, :func:`log_volume_estimate` returns values with error estimates):

* ``exact``: all ``d`` JVPs per latent (above). The Gram matrix is formed in float64 row blocks, never from a
  float32 product (a float32 Gram loses up to 2.6 nats at condition 1e2), whatever ``precision`` the JVPs ran in.
* ``randomized``: top-k by randomized SVD with power iterations (:mod:`gendebias.geometry.randomized`).
* ``projection``: the published random-projection pipeline, debiased (:mod:`gendebias.geometry.projection`).

Stochastic Lanczos quadrature is not offered: measurements reported from an H200 (not reproduced in
``benchmarks/RESULTS.md``) found 2.6-7 nats of error with 10-100 probes and a bias of hundreds of nats at
condition 1e3, so no error bar would make it useful for weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError
from gendebias.geometry._inputs import GeneratorLike, check_choice
from gendebias.geometry.estimate import LogVolumeEstimate
from gendebias.geometry.jacobian import map_jacobians
from gendebias.geometry.precision import Precision
from gendebias.geometry.projection import projection_log_volume
from gendebias.geometry.randomized import randomized_log_volume
from gendebias.geometry.spectrum import check_top_k, log_volume_from_singular_values, rank_tolerance
from gendebias.geometry.tiles import nonlinearities, tile_codes

Method = Literal["exact", "randomized", "projection"]
Route = Literal["auto", "gram", "svd"]
ROUTES = ("auto", "gram", "svd")
GRAM_FLOOR_NATS = 1e-10
"""Error the Gram route may always add, in nats: what keeps float64 Jacobians on it at small condition numbers."""
GRAM_ROWS = 4096
"""Rows of ``J`` cast to float64 at a time when forming the Gram matrix."""


def log_volume(generator: GeneratorLike, latents: Tensor, *, method: Method = "exact",
               top_k: int | None = None, chunk_size: int | None = None, precision: Precision = "fp32",
               memory_budget: int | None = None, cache: bool = False, **options: Any) -> Tensor:
    """Log-volume change of ``generator`` at each latent: :func:`log_volume_estimate`'s values alone.

    Args:
        generator: a ``Generator`` or callable ``(N, *latent_shape) -> (N, *output_shape)``.
        latents: ``(N, *latent_shape)`` floating tensor.
        method: ``"exact"`` (all ``d`` JVPs), ``"randomized"`` or ``"projection"``; see :data:`METHODS`.
        top_k: if given, ``sum`` of the logs of the ``top_k`` largest singular values only (Polarity's knob).
        chunk_size: latents per chunk; None plans it from ``memory_budget``.
        precision: ``"fp32"``, ``"tf32"`` or ``"bf16"`` products; the Gram and factorisation stay float64.
        memory_budget: bytes one chunk may use (None: the device's default).
        cache: on a piecewise-affine generator, compute one value per tile code and reuse it for every latent
            in the same tile (pays off only at tiny latent dims, ``docs/design.md#tiles-and-tile-codes``).
            Refused on other generators.
        options: the method's own knobs (``oversampling``, ``power_iterations``, ``projection_dim``, ``seed``).

    Returns:
        ``(N,)`` float64 tensor; ``-inf`` where the (top-k) Jacobian is rank deficient.
    """
    if cache:
        return _cached_log_volume(generator, latents, method=method, top_k=top_k, chunk_size=chunk_size,
                                  precision=precision, memory_budget=memory_budget, **options)
    return log_volume_estimate(generator, latents, method=method, top_k=top_k, chunk_size=chunk_size,
                               precision=precision, memory_budget=memory_budget, **options).log_volume


def log_volume_estimate(generator: GeneratorLike, latents: Tensor, *, method: Method = "exact",
                        top_k: int | None = None, chunk_size: int | None = None, precision: Precision = "fp32",
                        memory_budget: int | None = None, **options: Any) -> LogVolumeEstimate:
    """Log-volumes with the method's error estimate and a description of the run (see :func:`log_volume`)."""
    check_choice("method", method, METHODS)
    return METHODS[method](generator, latents, top_k=top_k, chunk_size=chunk_size, precision=precision,
                           memory_budget=memory_budget, **options)


def exact_log_volume(generator: GeneratorLike, latents: Tensor, *, top_k: int | None, chunk_size: int | None,
                     precision: Precision, memory_budget: int | None) -> LogVolumeEstimate:
    """All ``d`` JVPs per latent, then the float64 Gram/Cholesky or SVD of the module docstring."""
    volumes, run = map_jacobians(generator, latents, lambda block: log_volume_from_jacobians(block, top_k=top_k),
                                 chunk_size=chunk_size, precision=precision, memory_budget=memory_budget,
                                 reduce_bytes=_reduce_bytes if top_k is None else _svd_bytes)
    values = torch.cat(list(volumes))
    error = torch.zeros_like(values) if run.precision == "fp32" else torch.full_like(values, torch.nan)
    products = math.prod(run.latent_shape) if run.mode == "forward" else run.output_dim
    return LogVolumeEstimate(values, error, "exact", run.precision, top_k, products, run.chunking)


def singular_values(generator: GeneratorLike, latents: Tensor, *, top_k: int | None = None,
                    chunk_size: int | None = None, precision: Precision = "fp32",
                    memory_budget: int | None = None) -> Tensor:
    """Singular values of each latent's Jacobian, descending, float64, shape ``(N, k)``.

    ``k = top_k`` if given, else ``min(D, d)``. Computed by SVD of the float64 Jacobian.
    """
    blocks, _ = map_jacobians(generator, latents, lambda block: singular_values_from_jacobians(block, top_k=top_k),
                              chunk_size=chunk_size, precision=precision, memory_budget=memory_budget,
                              reduce_bytes=_svd_bytes)
    return torch.cat(list(blocks))


def singular_values_from_jacobians(jacobians: Tensor, *, top_k: int | None = None) -> Tensor:
    """``(N, D, d)`` Jacobians -> ``(N, k)`` float64 singular values, descending (SVD of the float64 ``J``)."""
    check_top_k(top_k, jacobians.shape[-1], jacobians.shape[-2])
    return _singular_values(jacobians, top_k)


def log_volume_from_jacobians(jacobians: Tensor, *, top_k: int | None = None, route: Route = "auto") -> Tensor:
    """``(N, D, d)`` Jacobians -> ``(N,)`` float64 log-volumes by the exact method (see the module docstring).

    ``route``: ``"auto"`` (the rule of the module docstring), or ``"gram"`` / ``"svd"`` to force one route on every
    latent, for measurements (``"gram"`` still takes the SVD where the Cholesky fails). ``top_k`` always takes the
    SVD.
    """
    check_top_k(top_k, jacobians.shape[-1], jacobians.shape[-2])
    check_choice("route", route, ROUTES)
    rtol = rank_tolerance(jacobians.shape[-1], jacobians.dtype)
    if top_k is not None:
        return log_volume_from_singular_values(_singular_values(jacobians, top_k), rtol)
    output_dim, latent_dim = jacobians.shape[-2:]
    if output_dim < latent_dim:
        raise InvalidArgumentError(
            f"the generator's output dimension ({output_dim}) is smaller than its latent dimension ({latent_dim}), "
            "so J^T J is singular at every latent; pass top_k <= the output dimension"
        )
    if route == "svd":
        return log_volume_from_singular_values(_singular_values(jacobians, None), rtol)
    gram = gram64(jacobians)
    factor, info = torch.linalg.cholesky_ex(gram)
    result = factor.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)
    fast = info == 0
    if route == "auto":
        fast &= condition_certified(gram, gram_condition_limit(latent_dim, jacobians.dtype))
    slow = ~fast
    if bool(slow.any()):
        result[slow] = log_volume_from_singular_values(_singular_values(jacobians[slow], None), rtol)
    return result


def gram_condition_limit(latent_dim: int, dtype: torch.dtype) -> float:
    """Largest ``kappa(J)`` at which the Gram route is taken for ``(D, latent_dim)`` Jacobians of ``dtype``.

    ``min(1 / rtol, max(eps_J / eps64, sqrt(GRAM_FLOOR_NATS / (d * eps64))))``: the Gram route's error
    ``d * eps64 * kappa^2`` stays below the Jacobian's own ``d * eps_J * kappa`` or below the floor, and the latent
    is clear of the rank tolerance (derivation in the module docstring and ``docs/geometry.md``). Float32, ``d = 100``:
    8.4e4 (the rank tolerance); float64, ``d = 6``: 274 (the floor).
    """
    eps64 = torch.finfo(torch.float64).eps
    accurate = max(torch.finfo(dtype).eps / eps64, math.sqrt(GRAM_FLOOR_NATS / (latent_dim * eps64)))
    return min(1.0 / rank_tolerance(latent_dim, dtype), accurate)


def condition_certified(gram: Tensor, limit: float) -> Tensor:
    """``(N,)`` bool: True where ``kappa(J) < limit`` is certified from ``G = J^T J`` alone, without an SVD.

    ``sigma_max^2 = ||G||_2 <= s = min(||G||_F, ||G||_1)`` (``G`` is symmetric, so ``||G||_1 = ||G||_inf``). If
    the Cholesky factorisation of ``G - (s / limit^2) I`` runs to completion, that matrix is positive definite up to
    its backward error (Higham, Thm. 10.3: ``~ d^2 eps64 ||G||``, under 1% of the shift for any float32 limit), so
    ``sigma_min^2 = lambda_min(G) > s / limit^2 >= sigma_max^2 / limit^2``. One more ``d x d`` Cholesky per latent.
    """
    scale = torch.minimum(gram.square().sum(dim=(-2, -1)).sqrt(), gram.abs().sum(dim=-1).amax(dim=-1))
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    _, info = torch.linalg.cholesky_ex(gram - (scale / limit**2)[:, None, None] * eye)
    return info == 0


def gram64(jacobians: Tensor) -> Tensor:
    """``J^T J`` in float64, ``(N, d, d)``, from ``(N, D, d)`` Jacobians of any dtype.

    Rows are cast in blocks of :data:`GRAM_ROWS`, so the float64 copy never exceeds a block (a float64 copy of
    the whole ``J`` would double the chunk's memory).
    """
    gram = jacobians.new_zeros((jacobians.shape[0], jacobians.shape[-1], jacobians.shape[-1]), dtype=torch.float64)
    for rows in jacobians.split(GRAM_ROWS, dim=-2):
        block = rows.to(torch.float64)
        gram += block.mT @ block
    return gram


METHODS: dict[str, Callable[..., LogVolumeEstimate]] = {
    "exact": exact_log_volume,
    "randomized": randomized_log_volume,
    "projection": projection_log_volume,
}
"""Log-volume methods by name; each takes ``(generator, latents, *, top_k, chunk_size, precision,
memory_budget, **its own options)`` and returns a :class:`LogVolumeEstimate`."""


def _svd_bytes(latent_dim: int, output_dim: int) -> int:
    """Extra bytes per latent of the SVD route (top-k, singular values): a float64 copy of ``J`` and its work."""
    return 8 * latent_dim * (output_dim + 4 * latent_dim)


def _reduce_bytes(latent_dim: int, output_dim: int) -> int:
    """Extra bytes per latent of the float64 reduction: one block of Gram rows plus a few ``d x d`` matrices."""
    return 8 * latent_dim * (min(GRAM_ROWS, output_dim) + 4 * latent_dim)


def _singular_values(jacobians: Tensor, top_k: int | None) -> Tensor:
    sigma = torch.linalg.svdvals(jacobians.to(torch.float64))
    return sigma if top_k is None else sigma[:, :top_k]


def _cached_log_volume(generator: GeneratorLike, latents: Tensor, *, method: Method, top_k: int | None,
                       chunk_size: int | None, **options: Any) -> Tensor:
    """One log-volume per tile code, scattered back to every latent of that tile.

    Sound because on a piecewise-affine generator the activation pattern determines ``J`` exactly, and the tile
    code hashes the whole pattern (64-bit; a collision between two given tiles has probability ~2^-64).
    """
    report = nonlinearities(generator, latents[:1])
    if not report.piecewise_affine:
        raise InvalidArgumentError(
            "cache=True needs a piecewise-affine generator, but this one has smooth operations "
            f"{list(report.smooth)}; its Jacobian varies inside a tile. Call log_volume without cache"
        )
    codes = tile_codes(generator, latents, chunk_size=chunk_size)
    unique, inverse = torch.unique(codes, return_inverse=True)
    first = torch.full((unique.shape[0],), latents.shape[0], dtype=torch.long, device=codes.device)
    first = first.scatter_reduce(0, inverse, torch.arange(latents.shape[0], device=codes.device), reduce="amin")
    values = log_volume(generator, latents[first], method=method, top_k=top_k, chunk_size=chunk_size, **options)
    return values[inverse]
