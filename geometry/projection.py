"""Log-volumes through a random orthogonal projection of the output: the published pipeline, as a baseline.

MaGNET's and Polarity's published code project the output ``G(z) in R^D`` onto ``p`` random orthonormal directions
``P (p x D)``, take the Jacobian of the projection by reverse mode (``p`` VJPs per latent, one per row of ``P``)
and the top-k singular values of ``P J``. This module does the same, and corrects its bias:

For Haar-random ``P`` and ``J = U S V^T``, ``W = P U (p x d)`` is the top ``p x d`` block of a Haar-random
orthonormal frame whatever ``J`` is, and ``log det((PJ)^T PJ) = log det(J^T J) + log det(W^T W)`` with
``det(W^T W) ~ prod_{i=1..d} Beta((p - i + 1)/2, (D - p)/2)`` (independent factors; Wilks' Lambda). So

    E[log det W^T W]   = sum_i psi((p - i + 1)/2) - psi((D - i + 1)/2)
    Var[log det W^T W] = sum_i psi'((p - i + 1)/2) - psi'((D - i + 1)/2)

exactly, for every generator; the estimate subtracts half the mean and reports half the standard deviation as its
error. With ``top_k`` the same mean at ``m = top_k`` debiases (exact only when the other singular values are
negligible) and the reported error is the interlacing bound of :func:`top_k_bound`, not a standard deviation:
measured on a random-init DCGAN-64 (top-30 of 100, ``p = 200``) the top-k answer was 7 nats off, while the
``m = k`` standard deviation said 0.28. ``p < 2d`` draws a warning: the error grows quickly as
``p`` falls towards ``d``. ``P`` is drawn once per call from ``seed`` and shared by every latent.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError
from gendebias.geometry._inputs import GeneratorLike
from gendebias.geometry.estimate import LogVolumeEstimate
from gendebias.geometry.jacobian import inspect_call
from gendebias.geometry.memory import Plan, map_chunks, plan_for
from gendebias.geometry.precision import Precision, effective_precision, lowered, precision_mode
from gendebias.geometry.products import Backward, BatchedFunction, batched_function, vjp_operator
from gendebias.geometry.spectrum import check_top_k, log_volume_from_singular_values, rank_tolerance


def projection_log_volume(generator: GeneratorLike, latents: Tensor, *, top_k: int | None,
                          chunk_size: int | None, precision: Precision, memory_budget: int | None,
                          projection_dim: int | None = None, seed: int = 0) -> LogVolumeEstimate:
    """Log-volume (or its top-k part) from ``P J``, debiased, with its standard deviation as the error.

    Args:
        projection_dim: ``p``, rows of ``P``; default ``min(D, 2 d)``. Must be at least ``top_k`` (or ``d``).
        seed: seeds ``P`` on the latents' device.
    """
    shape = inspect_call(generator, latents, chunk_size=chunk_size, precision=precision,
                         memory_budget=memory_budget)
    check_top_k(top_k, shape.latent_dim, shape.output_dim)
    kept = top_k if top_k is not None else shape.latent_dim
    rows = projection_dim if projection_dim is not None else min(shape.output_dim, 2 * shape.latent_dim)
    if isinstance(rows, bool) or not isinstance(rows, int) or not kept <= rows <= shape.output_dim:
        raise InvalidArgumentError(
            f"projection_dim must be an int in [{kept}, {shape.output_dim}] (at least the singular values kept, "
            f"at most the output dimension), got {rows!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidArgumentError(f"seed must be a non-negative int, got {seed!r}")
    if rows < min(2 * shape.latent_dim, shape.output_dim):
        warnings.warn(f"projection_dim {rows} is below 2 * latent_dim = {2 * shape.latent_dim}: the projection's "
                      "error grows quickly as it nears the latent dimension", UserWarning, stacklevel=3)
    projection = haar_rows(rows, shape.output_dim, seed, latents)
    mean, variance = log_det_moments(kept, rows, shape.output_dim)
    used = effective_precision(precision, latents.device)
    function = batched_function(lowered(generator, used), shape.latent_shape)
    backward = Backward()
    plan = Plan(plan_for(shape.forward_bytes, result_bytes=3 * rows * shape.latent_dim * 8, latents=latents,
                         tangents=rows, chunk_size=chunk_size, memory_budget=memory_budget))

    def work(start: int, chunk: Tensor) -> Tensor:
        with precision_mode(used, chunk.device):
            return _projected_log_volume(function, chunk.flatten(1), projection, kept, plan.chunking.tangents,
                                         backward)

    parts = list(map_chunks(latents, plan, work)) if latents.shape[0] else [latents.new_zeros(0).double()]
    values = torch.cat(parts) - mean / 2
    spread = variance ** 0.5 / 2 if top_k is None else top_k_bound(kept, shape.latent_dim, rows, shape.output_dim)
    error = torch.full_like(values, spread)
    return LogVolumeEstimate(values, error, "projection", used, top_k, rows, plan.chunking)


def log_det_moments(kept: int, rows: int, output_dim: int) -> tuple[float, float]:
    """Mean and variance of ``log det(W^T W)`` for ``W`` the ``rows x kept`` block of a Haar frame in R^D."""
    index = torch.arange(kept, dtype=torch.float64)
    upper, lower = (rows - index) / 2, (output_dim - index) / 2
    mean = (torch.special.digamma(upper) - torch.special.digamma(lower)).sum()
    variance = (torch.special.polygamma(1, upper) - torch.special.polygamma(1, lower)).sum()
    return float(mean), float(variance)


def top_k_bound(kept: int, latent_dim: int, rows: int, output_dim: int) -> float:
    """Half-width of the error of the debiased top-k sum: ``|sum_{i<=k} log sigma_i(PJ) - mean/2 - truth|``.

    With ``PJ = (P U) S V^T`` and ``W = P U``: ``sigma_min(P U_k) sigma_i(J) <= sigma_i(PJ) <= sigma_max(W)
    sigma_i(J)``, and ``sqrt(D / p) sigma(W)`` lies within the Marchenko-Pastur edges ``1 -+ sqrt(m / p)``
    (``m = k`` below, ``d`` above; asymptotic, and conservative when ``p`` is a large share of ``D``). The
    ``top_k`` answer mixes directions the projection cannot separate, so this bound is wide on purpose; use
    ``method="randomized"`` when the top-k sum matters.
    """
    if rows == output_dim:
        return 0.0
    mean, _ = log_det_moments(kept, rows, output_dim)
    offset = kept * 0.5 * math.log(rows / output_dim) - mean / 2  # the debiasing against the plain sqrt(D/p) scale
    above = kept * math.log1p(math.sqrt(latent_dim / rows)) + offset
    below = -kept * math.log1p(-math.sqrt(kept / rows)) - offset
    return max(above, below)


def haar_rows(rows: int, output_dim: int, seed: int, like: Tensor) -> Tensor:
    """``(rows, D)`` with orthonormal rows, Haar-distributed (QR of a Gaussian with the signs of R fixed)."""
    generator = torch.Generator(device=like.device).manual_seed(seed)
    gaussian = torch.randn((output_dim, rows), generator=generator, device=like.device, dtype=like.dtype)
    q, r = torch.linalg.qr(gaussian)
    return (q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, 1.0)).T.contiguous()


def _projected_log_volume(function: BatchedFunction, flat: Tensor, projection: Tensor, kept: int,
                          tangents: int, backward: Backward) -> Tensor:
    """``(c,)`` float64: sum of the ``kept`` largest log singular values of ``P J`` (``p`` VJPs per latent)."""
    with torch.no_grad():
        pullback = vjp_operator(function, flat, backward)
        projected = pullback(projection[:, None, :].expand(-1, flat.shape[0], -1), tangents)  # (p, c, d)
        sigma = torch.linalg.svdvals(projected.permute(1, 0, 2).to(torch.float64))[:, :kept]
    return log_volume_from_singular_values(sigma, rank_tolerance(flat.shape[1], flat.dtype))
