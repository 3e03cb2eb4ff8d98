"""Per-latent log-volumes and singular values of a generator's Jacobian.

``log_volume(z) = 1/2 * log det(J(z)^T J(z)) = sum_i log sigma_i(J(z))`` (``docs/design.md#log-volume``): the log
of the factor by which the generator scales d-dimensional volume at ``z``. Under naive sampling ``z ~ p`` the
generated manifold carries density ``p(z) / exp(log_volume(z))``; MaGNET (Humayun, Balestriero & Baraniuk,
ICLR 2022, §3) reweights by this volume to make outputs area-uniform, and Polarity Sampling (Humayun et al.,
CVPR 2022, §3) raises it to a power ``rho`` and keeps only the ``top_k`` largest singular values.

Numerics (method ``"exact"``): ``J`` is cast to float64 and the Gram matrix ``J^T J`` is factorised by Cholesky,
``log_volume = sum_i log L_ii``. The fast path is taken only where the condition number of ``J`` is certified
small: ``kappa(J) <= ||J||_F * ||L^-1||_F <= CHOLESKY_MAX_CONDITION`` (both norms bound the extreme singular
values), which keeps the Gram's rounding error below ~1e-8 nats. Every other latent (a failed or badly conditioned
Cholesky) falls back to the singular values of the float64 ``J``. A latent whose smallest singular value is at or
below ``rtol * sigma_max`` with ``rtol = d * eps(dtype of J)`` is rank deficient and gets ``-inf``: never NaN, never
an exception. ``log(det(...))`` is never formed, so nothing overflows (``d = 512`` latents with ``sigma ~ 10``
give ``log_volume ~ 1200``, far past ``exp``'s range).

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
CHOLESKY_MAX_CONDITION = 1e4
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
    return _singular_values(jacobians, top_k)


def log_volume_from_jacobians(jacobians: Tensor, *, top_k: int | None = None) -> Tensor:
    """``(N, D, d)`` Jacobians -> ``(N,)`` float64 log-volumes by the exact method (see the module docstring)."""
    check_top_k(top_k, jacobians.shape[-1], jacobians.shape[-2])
    if top_k is not None:
        rtol = rank_tolerance(jacobians.shape[-1], jacobians.dtype)
        return log_volume_from_singular_values(_singular_values(jacobians, top_k), rtol)
    output_dim, latent_dim = jacobians.shape[-2:]
    if output_dim < latent_dim:
        raise InvalidArgumentError(
            f"the generator's output dimension ({output_dim}) is smaller than its latent dimension ({latent_dim}), "
            "so J^T J is singular at every latent; pass top_k <= the output dimension"
        )
    gram = gram64(jacobians)
    factor, info = torch.linalg.cholesky_ex(gram)
    result = factor.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)
    limit = min(1.0 / rank_tolerance(jacobians.shape[-1], jacobians.dtype), CHOLESKY_MAX_CONDITION)
    fast = (info == 0) & (_condition_bound(gram, factor, info) <= limit)
    slow = ~fast
    if bool(slow.any()):
        sigma = torch.linalg.svdvals(jacobians[slow].to(torch.float64))
        result[slow] = log_volume_from_singular_values(sigma, rank_tolerance(jacobians.shape[-1], jacobians.dtype))
    return result


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


def _condition_bound(gram: Tensor, factor: Tensor, info: Tensor) -> Tensor:
    """Upper bound on ``kappa(J)``: ``sigma_max <= ||J||_F = sqrt(trace(J^T J))`` and
    ``1 / sigma_min = ||L^-1||_2 <= ||L^-1||_F``."""
    eye = torch.eye(factor.shape[-1], dtype=factor.dtype, device=factor.device).expand_as(factor)
    safe = torch.where((info == 0)[:, None, None], factor, eye)
    inverse = torch.linalg.solve_triangular(safe, eye, upper=False)
    frobenius = gram.diagonal(dim1=-2, dim2=-1).sum(dim=-1).clamp_min(0).sqrt()
    bound = frobenius * torch.linalg.matrix_norm(inverse)
    return torch.where(info == 0, bound, torch.full_like(bound, torch.inf))


def _singular_values(jacobians: Tensor, top_k: int | None) -> Tensor:
    check_top_k(top_k, jacobians.shape[-1], jacobians.shape[-2])
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
