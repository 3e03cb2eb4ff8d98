"""Sampling-importance-resampling: weight a pool of base draws for the target and resample it.

Cheap and exact as the pool grows, but it collapses on generators whose log-volumes spread over tens of nats: the
pool's Kish ESS is then a few latents. The ESS reported for the drawn latents is
:func:`~gendebias.geometry.ess.resampled_ess` of the pool's, so a collapse shows in the number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gendebias.geometry.ess import resampled_ess
from gendebias.geometry.resample import Scheme, rejection_sample, resample
from gendebias.geometry.weights import Target, effective_sample_size, log_weights, max_weight


@dataclass(frozen=True)
class SIRSettings:
    """``proposals``: the pool size (default ``10 n``); ``scheme``: how indices are drawn from it."""

    proposals: int | None = None
    scheme: Scheme = "multinomial"


@dataclass(frozen=True)
class SIRTrace:
    """``proposals`` in the pool, the ``scheme``, the pool's Kish ``pool_ess`` and ``max_weight``, the rejection
    ``acceptance_rate`` (NaN for other schemes), and the drawn pool ``indices`` ``(n,)`` (on the pool's device)."""

    proposals: int
    scheme: str
    pool_ess: float
    max_weight: float
    acceptance_rate: float
    indices: Tensor


@dataclass(frozen=True)
class Drawn:
    """Latents drawn from a pool: ``latents``, their normalised pool ``log_weights``, their ``ess`` and
    ``distinct`` count, and the trace."""

    latents: Tensor
    log_weights: Tensor
    ess: float
    distinct: int
    trace: SIRTrace


def resample_pool(pool: Tensor, log_volumes: Tensor, n: int, *, rho: float, target: Target,
                  log_proposal: Tensor | None, scheme: Scheme, seed: int,
                  class_probabilities: Tensor | None = None) -> Drawn:
    """Weight ``pool`` ``(N, ...)`` for the target (its ``log_volumes`` ``(N,)`` computed by the caller; for
    ``balanced`` also its ``class_probabilities`` ``(N, C)``, whose class masses are estimated on the whole pool)
    and draw ``n`` latents by ``scheme``."""
    weights = log_weights(log_volumes, rho=rho, target=target, log_proposal=log_proposal,
                          class_probabilities=class_probabilities)
    acceptance = math.nan
    if scheme == "rejection":
        rejection = rejection_sample(weights, n, seed=seed)
        indices, acceptance = rejection.indices, rejection.acceptance_rate
    else:
        indices = resample(weights, n, scheme=scheme, seed=seed)
    indices = indices.to(pool.device)
    pool_ess = effective_sample_size(weights)
    trace = SIRTrace(pool.shape[0], scheme, pool_ess, max_weight(weights), acceptance, indices)
    return Drawn(pool[indices], weights[indices.cpu()], resampled_ess(pool_ess, n),
                 int(torch.unique(indices).shape[0]), trace)
