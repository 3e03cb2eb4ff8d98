"""A cheap linear surrogate of the log-volume, for delayed-acceptance moves (:mod:`gendebias.geometry.kernels`).

Ridge regression of the exact log-volumes of already evaluated latents on their flattened coordinates, solved in its
dual form (an ``N x N`` Gram matrix, so it costs the same in 64 or 100,000 dimensions):

    s(z) = offset + (z - mean) . w,   w = X^T (X X^T + lambda I)^{-1} (y - offset)

with ``X`` the centred latents and ``y`` their log-volumes (finite ones only; repeated latents, e.g. resampled
copies, counted once). The penalty ``lambda`` is picked from :data:`PENALTIES` (times the mean squared norm of the
centred latents) by the exact leave-one-out residuals of ridge regression, ``e_i / (1 - H_ii)`` (Hastie, Tibshirani
& Friedman, "The Elements of Statistical Learning", 2nd ed., section 7.10); their root mean square is kept as the
surrogate's ``residual``, the error to expect on a latent it was not fitted to.

The surrogate knows nothing about the generator: it is only ever a screen. Delayed acceptance stays exact for any
surrogate held fixed during a move, and a poor one only costs rejections (``docs/samplers.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

PENALTIES = (1e-2, 1e-1, 1.0, 10.0, 100.0)
FEWEST_POINTS = 8  # fewer distinct evaluated latents than this: no surrogate


@dataclass(frozen=True)
class Surrogate:
    """``s(z) = offset + (z - mean) . weights`` on flattened latents (float64, on the CPU); ``residual``: the root
    mean square leave-one-out error of the fit, in nats of log-volume."""

    mean: Tensor
    weights: Tensor
    offset: float
    residual: float

    def log_volumes(self, latents: Tensor) -> Tensor:
        """``(N,)`` float64 predicted log-volumes of latents ``(N, *latent_shape)``, on the latents' device."""
        flat = latents.flatten(1).to(torch.float64)
        return (flat - self.mean.to(flat.device)) @ self.weights.to(flat.device) + self.offset


def fitted_surrogate(latents: Tensor, log_volumes: Tensor) -> Surrogate | None:
    """The ridge surrogate fitted to latents ``(N, *latent_shape)`` and their exact log-volumes ``(N,)``; None with
    fewer than :data:`FEWEST_POINTS` distinct latents of finite log-volume."""
    flat = latents.flatten(1).to(torch.float64).cpu()
    values = log_volumes.to(torch.float64).cpu()
    finite = torch.isfinite(values)
    flat, values = flat[finite], values[finite]
    if flat.shape[0] < FEWEST_POINTS:
        return None
    flat, first = _distinct(flat)
    values = values[first]
    count = flat.shape[0]
    if count < FEWEST_POINTS:
        return None
    mean, offset = flat.mean(dim=0), float(values.mean())
    centred, targets = flat - mean, values - offset
    eigenvalues, vectors = torch.linalg.eigh(centred @ centred.T)
    eigenvalues = eigenvalues.clamp_min(0.0)
    scale = float(eigenvalues.sum()) / count
    if scale <= 0.0:
        return None
    projected = vectors.T @ targets
    residual, penalty = min((_leave_one_out(eigenvalues, vectors, projected, targets, factor * scale),
                             factor * scale) for factor in PENALTIES)
    dual = vectors @ (projected / (eigenvalues + penalty))
    return Surrogate(mean, centred.T @ dual, offset, residual)


def _leave_one_out(eigenvalues: Tensor, vectors: Tensor, projected: Tensor, targets: Tensor, penalty: float) -> float:
    """Root mean square of the exact leave-one-out residuals of ridge with ``penalty`` (intercept included)."""
    shrink = eigenvalues / (eigenvalues + penalty)
    fitted = vectors @ (shrink * projected)
    leverage = (vectors**2) @ shrink + 1.0 / targets.shape[0]
    residuals = (targets - fitted) / (1.0 - leverage).clamp_min(1e-12)
    return math.sqrt(float((residuals**2).mean()))


def _distinct(flat: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct rows of ``flat`` and the index of each one's first occurrence."""
    rows, inverse = torch.unique(flat, dim=0, return_inverse=True)
    first = torch.full((rows.shape[0],), flat.shape[0], dtype=torch.long)
    first = first.scatter_reduce(0, inverse, torch.arange(flat.shape[0]), reduce="amin")
    return flat[first], first
