"""Per-latent log-volumes and singular values of a generator's Jacobian.

``log_volume(z) = 1/2 * log det(J(z)^T J(z)) = sum_i log sigma_i(J(z))`` (DESIGN.md §1): the log of the factor
by which the generator scales d-dimensional volume at ``z``. Under naive sampling ``z ~ p`` the generated manifold
carries density ``p(z) / exp(log_volume(z))``; MaGNET (Humayun, Balestriero & Baraniuk, ICLR 2022, §3) reweights
by this volume to make outputs area-uniform, and Polarity Sampling (Humayun et al., CVPR 2022, §3) raises it to a
power ``rho`` and keeps only the ``top_k`` largest singular values.

Numerics (method ``"exact"``): ``J`` is cast to float64 and the Gram matrix ``J^T J`` is factorised by Cholesky,
``log_volume = sum_i log L_ii``. The fast path is taken only where the condition number of ``J`` is certified
small: ``kappa(J) <= ||J||_F * ||L^-1||_F <= CHOLESKY_MAX_CONDITION`` (both norms bound the extreme singular
values), which keeps the Gram's rounding error below ~1e-8 nats. Every other latent (a failed or badly conditioned
Cholesky) falls back to the singular values of the float64 ``J``. A latent whose smallest singular value is at or
below ``rtol * sigma_max`` with ``rtol = d * eps(dtype of J)`` is rank deficient and gets ``-inf``: never NaN, never
an exception. ``log(det(...))`` is never formed, so nothing overflows (``d = 512`` latents with ``sigma ~ 10``
give ``log_volume ~ 1200``, far past ``exp``'s range).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError
from gendebias.geometry._inputs import GeneratorLike, check_choice
from gendebias.geometry.jacobian import jacobian_chunks
from gendebias.geometry.tiles import nonlinearities, tile_codes

Method = Literal["exact"]
CHOLESKY_MAX_CONDITION = 1e4


def log_volume(generator: GeneratorLike, latents: Tensor, *, method: Method = "exact",
               top_k: int | None = None, chunk_size: int | None = None, cache: bool = False) -> Tensor:
    """Log-volume change of ``generator`` at each latent.

    Args:
        generator: a ``Generator`` or callable ``(N, *latent_shape) -> (N, *output_shape)``.
        latents: ``(N, *latent_shape)`` floating tensor.
        method: ``"exact"`` (all ``d`` singular values through the Jacobian); see :data:`METHODS`.
        top_k: if given, ``sum`` of the logs of the ``top_k`` largest singular values only (Polarity's knob).
        chunk_size: latents per Jacobian batch (bounds memory); None picks one.
        cache: on a piecewise-affine generator, compute one value per tile code and reuse it for every latent
            in the same tile (pays off only at tiny latent dims, DESIGN.md §1). Refused on other generators.

    Returns:
        ``(N,)`` float64 tensor; ``-inf`` where the (top-k) Jacobian is rank deficient.
    """
    check_choice("method", method, METHODS)
    if cache:
        return _cached_log_volume(generator, latents, method=method, top_k=top_k, chunk_size=chunk_size)
    compute = METHODS[method]
    blocks = [compute(block, top_k) for block in jacobian_chunks(generator, latents, chunk_size=chunk_size)]
    return torch.cat(blocks)


def singular_values(generator: GeneratorLike, latents: Tensor, *, top_k: int | None = None,
                    chunk_size: int | None = None) -> Tensor:
    """Singular values of each latent's Jacobian, descending, float64, shape ``(N, k)``.

    ``k = top_k`` if given, else ``min(D, d)``. Computed by SVD of the float64 Jacobian.
    """
    blocks = jacobian_chunks(generator, latents, chunk_size=chunk_size)
    return torch.cat([singular_values_from_jacobians(block, top_k=top_k) for block in blocks])


def singular_values_from_jacobians(jacobians: Tensor, *, top_k: int | None = None) -> Tensor:
    """``(N, D, d)`` Jacobians -> ``(N, k)`` float64 singular values, descending (SVD of the float64 ``J``)."""
    return _singular_values(jacobians, top_k)


def log_volume_from_jacobians(jacobians: Tensor, *, top_k: int | None = None) -> Tensor:
    """``(N, D, d)`` Jacobians -> ``(N,)`` float64 log-volumes by the exact method (see the module docstring)."""
    _check_top_k(top_k, jacobians.shape[-1], jacobians.shape[-2])
    if top_k is not None:
        return _log_volume_from_singular_values(_singular_values(jacobians, top_k), _rtol(jacobians))
    output_dim, latent_dim = jacobians.shape[-2:]
    if output_dim < latent_dim:
        raise InvalidArgumentError(
            f"the generator's output dimension ({output_dim}) is smaller than its latent dimension ({latent_dim}), "
            "so J^T J is singular at every latent; pass top_k <= the output dimension"
        )
    j64 = jacobians.to(torch.float64)
    gram = j64.mT @ j64
    factor, info = torch.linalg.cholesky_ex(gram)
    result = factor.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)
    fast = (info == 0) & (_condition_bound(j64, factor, info) <= min(1.0 / _rtol(jacobians), CHOLESKY_MAX_CONDITION))
    slow = ~fast
    if bool(slow.any()):
        sigma = torch.linalg.svdvals(j64[slow])
        result[slow] = _log_volume_from_singular_values(sigma, _rtol(jacobians))
    return result


def _exact(jacobians: Tensor, top_k: int | None) -> Tensor:
    return log_volume_from_jacobians(jacobians, top_k=top_k)


METHODS: dict[str, Callable[[Tensor, int | None], Tensor]] = {"exact": _exact}
"""Estimators by name: each maps a chunk of ``(c, D, d)`` Jacobians and ``top_k`` to ``(c,)`` float64."""


def _condition_bound(j64: Tensor, factor: Tensor, info: Tensor) -> Tensor:
    """Upper bound on ``kappa(J)``: ``sigma_max <= ||J||_F`` and ``1 / sigma_min = ||L^-1||_2 <= ||L^-1||_F``."""
    eye = torch.eye(factor.shape[-1], dtype=factor.dtype, device=factor.device).expand_as(factor)
    safe = torch.where((info == 0)[:, None, None], factor, eye)
    inverse = torch.linalg.solve_triangular(safe, eye, upper=False)
    bound = torch.linalg.matrix_norm(j64) * torch.linalg.matrix_norm(inverse)
    return torch.where(info == 0, bound, torch.full_like(bound, torch.inf))


def _singular_values(jacobians: Tensor, top_k: int | None) -> Tensor:
    _check_top_k(top_k, jacobians.shape[-1], jacobians.shape[-2])
    sigma = torch.linalg.svdvals(jacobians.to(torch.float64))
    return sigma if top_k is None else sigma[:, :top_k]


def _log_volume_from_singular_values(sigma: Tensor, rtol: float) -> Tensor:
    """Sum of log singular values (descending, ``(N, k)``); ``-inf`` where ``sigma_k <= rtol * sigma_1``."""
    deficient = sigma[:, -1] <= rtol * sigma[:, 0]
    result = sigma.log().sum(dim=-1)
    return result.masked_fill(deficient, -torch.inf)


def _rtol(jacobians: Tensor) -> float:
    """Relative rank tolerance ``d * eps``: singular values below ``rtol * sigma_max`` are rounding noise."""
    return jacobians.shape[-1] * torch.finfo(jacobians.dtype).eps


def _check_top_k(top_k: int | None, latent_dim: int, output_dim: int) -> None:
    if top_k is None:
        return
    limit = min(latent_dim, output_dim)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= limit:
        raise InvalidArgumentError(
            f"top_k must be an int in [1, {limit}] (min of latent and output dims), got {top_k!r}"
        )


def _cached_log_volume(generator: GeneratorLike, latents: Tensor, *, method: str, top_k: int | None,
                       chunk_size: int | None) -> Tensor:
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
    values = log_volume(generator, latents[first], method=method, top_k=top_k,  # type: ignore[arg-type]
                        chunk_size=chunk_size)
    return values[inverse]
