"""Importance weights over latents, always in log space and self-normalised with log-sum-exp.

Targets (``docs/design.md#targets-and-rho``), for latents drawn from a proposal ``q``:

* ``tilted`` (MaGNET, ICLR 2022, §3.2; Polarity Sampling, CVPR 2022, §3): ``pi(z) ∝ p(z) * exp(rho * log_volume(z))``
  with ``p`` the latent prior. ``log_w = rho * log_volume + log p - log q``; with ``q = p`` (no ``log_proposal``)
  that is ``rho * log_volume``.
* ``uniform``: ``pi(z) ∝ exp(rho * log_volume(z))`` on a bounded latent region; with ``rho = 1`` the outputs are
  area-uniform on the part of the manifold the region maps to. ``log_w = rho * log_volume - log q``; with no
  ``log_proposal`` the proposal is taken to be uniform on the region (constant ``log q``). Restricting to the region
  is the proposal's job: draw latents inside it (a truncated proposal's unknown normaliser cancels here).

Weights are returned normalised, ``logsumexp(log_w) = 0``, never exponentiated before normalising, so log-volumes
of 800..900 nats give weights ~[0, 0, 1] rather than overflow or a clip that silently restores naive sampling.
:func:`effective_sample_size` (``1 / sum w_i^2``) and :func:`max_weight` let a caller see a degenerate reweighting.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from gendebias.errors import DegenerateWeightsError, InvalidArgumentError
from gendebias.geometry._inputs import check_choice

Target = Literal["tilted", "uniform"]
TARGETS = ("tilted", "uniform")


def log_weights(log_volumes: Tensor, *, rho: float = 1.0, target: Target = "tilted",
                log_proposal: Tensor | None = None, log_prior: Tensor | None = None) -> Tensor:
    """Normalised log importance weights of latents for ``target`` (see the module docstring).

    Args:
        log_volumes: ``(N,)`` log-volumes (``-inf`` allowed: a rank-deficient latent gets zero weight for ``rho > 0``).
        rho: exponent of the volume; 0 is naive sampling, 1 area-uniform, < 0 favours modes, > 0 rare regions.
        target: ``"tilted"`` or ``"uniform"``.
        log_proposal: ``(N,)`` log density (up to a constant) of the distribution the latents were drawn from;
            None means the prior (``tilted``) or uniform on the region (``uniform``).
        log_prior: ``(N,)`` log prior density (up to a constant); needed only for ``tilted`` with ``log_proposal``.

    Returns:
        ``(N,)`` float64 with ``logsumexp == 0``.
    """
    check_choice("target", target, TARGETS)
    log_volumes = _check_log_density(log_volumes, "log_volumes", allow_minus_inf=True)
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not torch.isfinite(torch.tensor(float(rho))):
        raise InvalidArgumentError(f"rho must be a finite number, got {rho!r}")
    weights = tilted(log_volumes, float(rho))
    if target == "tilted" and log_proposal is not None:
        if log_prior is None:
            raise InvalidArgumentError(
                "target='tilted' with log_proposal also needs log_prior (the latent prior's log density)"
            )
        weights = weights + _check_log_density(log_prior, "log_prior", like=log_volumes, allow_minus_inf=True)
    if target == "uniform" and log_prior is not None:
        raise InvalidArgumentError("target='uniform' does not use log_prior; pass log_proposal only")
    if log_proposal is not None:
        weights = weights - _check_log_density(log_proposal, "log_proposal", like=log_volumes)
    return _normalise(weights)


def effective_sample_size(log_weights: Tensor) -> float:
    """Kish's effective sample size ``1 / sum_i w_i^2`` of (possibly unnormalised) log weights: between 1 and N."""
    normalised = _normalise(_check_log_density(log_weights, "log_weights", allow_minus_inf=True))
    return float(torch.exp(-torch.logsumexp(2 * normalised, dim=0)))


def max_weight(log_weights: Tensor) -> float:
    """Largest normalised weight: near 1 means one latent carries all the mass."""
    normalised = _normalise(_check_log_density(log_weights, "log_weights", allow_minus_inf=True))
    return float(normalised.max().exp())


def tilted(log_volumes: Tensor, rho: float) -> Tensor:
    """Unnormalised ``rho * log_volumes`` with ``0 * -inf = 0``; refuses ``rho < 0`` with rank-deficient latents.
    Batch jobs normalise these across shards themselves."""
    if rho == 0:
        return torch.zeros_like(log_volumes)
    if rho < 0 and bool(torch.isneginf(log_volumes).any()):
        raise DegenerateWeightsError(
            f"rho={rho} < 0 gives infinite weight to the {int(torch.isneginf(log_volumes).sum())} rank-deficient "
            "latents (log_volume -inf); drop them before weighting"
        )
    return rho * log_volumes


def _normalise(log_weights: Tensor) -> Tensor:
    total = torch.logsumexp(log_weights, dim=0)
    if not bool(torch.isfinite(total)):
        raise DegenerateWeightsError(
            "no latent has positive weight (every log weight is -inf); the pool holds only rank-deficient "
            "latents or latents outside the proposal's support"
        )
    return log_weights - total


def _check_log_density(values: Tensor, name: str, *, like: Tensor | None = None,
                       allow_minus_inf: bool = False) -> Tensor:
    if not isinstance(values, Tensor) or values.ndim != 1:
        shape = getattr(values, "shape", type(values))
        raise InvalidArgumentError(f"{name} must be a 1-D tensor of shape (N,), got {shape}")
    if like is not None and values.shape != like.shape:
        raise InvalidArgumentError(f"{name} has shape {tuple(values.shape)} but log_volumes has {tuple(like.shape)}")
    if values.shape[0] == 0:
        raise InvalidArgumentError(f"{name} is empty; weights need at least one latent")
    values = values.to(torch.float64)
    bad = torch.isnan(values) | torch.isposinf(values)
    if not allow_minus_inf:
        bad |= torch.isneginf(values)
    if bool(bad.any()):
        allowed = "finite or -inf" if allow_minus_inf else "finite"
        raise InvalidArgumentError(f"{name} must be {allowed}; {int(bad.sum())} entries are not "
                                   f"(first index {int(bad.nonzero()[0])})")
    return values
