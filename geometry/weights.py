"""Importance weights over latents, always in log space and self-normalised with log-sum-exp.

Targets (``docs/design.md#targets-and-rho``), for latents drawn from a proposal ``q``:

* ``tilted`` (MaGNET, ICLR 2022, §3.2; Polarity Sampling, CVPR 2022, §3): ``pi(z) ∝ p(z) * exp(rho * log_volume(z))``
  with ``p`` the latent prior. ``log_w = rho * log_volume + log p - log q``; with ``q = p`` (no ``log_proposal``)
  that is ``rho * log_volume``.
* ``uniform``: ``pi(z) ∝ exp(rho * log_volume(z))`` on a bounded latent region; with ``rho = 1`` the outputs are
  area-uniform on the part of the manifold the region maps to. ``log_w = rho * log_volume - log q``; with no
  ``log_proposal`` the proposal is taken to be uniform on the region (constant ``log q``). Restricting to the region
  is the proposal's job: draw latents inside it (a truncated proposal's unknown normaliser cancels here).
* ``balanced`` (classes balanced, each class volume-uniform): with class probabilities ``P_ic = p(c | G(z_i))`` of a
  classifier, ``log_w = log t_i + log sum_c p~(c | G(z_i)) lambda_c`` where ``t`` are the ``tilted`` weights,
  ``lambda_c = 1 / m_c`` with ``m_c`` the class mass under ``t``, and ``p~`` the classifier's posterior adjusted to
  those masses; see :func:`balanced_log_weights`. Every class then carries the same mass and, inside a class, the
  latents keep their ``tilted`` (volume) weights. Importance weighting to balance an attribute is that of Choi,
  Grover, Singh, Shu and Ermon, "Fair Generative Modeling via Weak Supervision", ICML 2020 (arXiv:1910.12008); the
  volume term is MaGNET's (Humayun, Balestriero and Baraniuk, ICLR 2022).

Weights are returned normalised, ``logsumexp(log_w) = 0``, never exponentiated before normalising, so log-volumes
of 800..900 nats give weights ~[0, 0, 1] rather than overflow or a clip that silently restores naive sampling.
:func:`effective_sample_size` (``1 / sum w_i^2``) and :func:`max_weight` let a caller see a degenerate reweighting.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor

from gendebias.errors import DegenerateWeightsError, InvalidArgumentError
from gendebias.geometry._inputs import check_choice

Target = Literal["tilted", "uniform", "balanced"]
TARGETS = ("tilted", "uniform", "balanced")
BALANCE_ITERATIONS = 10_000
"""Most fixed-point iterations :func:`balanced_log_weights` runs (hard labels need at most two)."""
BALANCE_TOLERANCE = 1e-12
"""The iteration stops when no class mass moves by more than this (relative)."""


class BalancedWeights(NamedTuple):
    """What :func:`balanced_log_weights` returns."""

    log_weights: Tensor
    """``(N,)`` float64 normalised log weights (``logsumexp == 0``)."""
    lambdas: Tensor
    """``(C,)`` float64 ``lambda_c = 1 / m_c``, scaled so that ``sum_c 1 / lambda_c = 1`` (``inf`` for a class the
    weighted pool holds no mass of)."""
    class_masses: Tensor
    """``(C,)`` float64 ``m_c``: the class masses under the ``tilted`` weights (sum to 1)."""
    iterations: int
    """Fixed-point iterations run (with hard labels one finds the masses and a second confirms them, unless the
    pool is balanced already)."""


def log_weights(log_volumes: Tensor, *, rho: float = 1.0, target: Target = "tilted",
                log_proposal: Tensor | None = None, log_prior: Tensor | None = None,
                class_probabilities: Tensor | None = None) -> Tensor:
    """Normalised log importance weights of latents for ``target`` (see the module docstring).

    Args:
        log_volumes: ``(N,)`` log-volumes (``-inf`` allowed: a rank-deficient latent gets zero weight for ``rho > 0``).
        rho: exponent of the volume; 0 is naive sampling, 1 area-uniform, < 0 favours modes, > 0 rare regions.
        target: ``"tilted"``, ``"uniform"`` or ``"balanced"`` (needs ``class_probabilities``).
        log_proposal: ``(N,)`` log density (up to a constant) of the distribution the latents were drawn from;
            None means the prior (``tilted``) or uniform on the region (``uniform``).
        log_prior: ``(N,)`` log prior density (up to a constant); needed only for ``tilted``/``balanced`` with
            ``log_proposal``.
        class_probabilities: ``(N, C)`` rows of a classifier's softmax for the latents' outputs; ``balanced`` only
            (:func:`balanced_log_weights`, whose ``lambdas`` this drops).

    Returns:
        ``(N,)`` float64 with ``logsumexp == 0``.
    """
    check_choice("target", target, TARGETS)
    if target == "balanced":
        if class_probabilities is None:
            raise InvalidArgumentError("target='balanced' needs class_probabilities: (N, C) probabilities of each "
                                       "latent's output, from a classifier", field="class_probabilities")
        return balanced_log_weights(log_volumes, class_probabilities, rho=rho, log_proposal=log_proposal,
                                    log_prior=log_prior).log_weights
    if class_probabilities is not None:
        raise InvalidArgumentError(f"class_probabilities is used by target='balanced' only, not {target!r}",
                                   field="class_probabilities")
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


def balanced_log_weights(log_volumes: Tensor, class_probabilities: Tensor, *, rho: float = 1.0,
                         log_proposal: Tensor | None = None, log_prior: Tensor | None = None,
                         iterations: int = BALANCE_ITERATIONS, tolerance: float = BALANCE_TOLERANCE) -> BalancedWeights:
    """Log weights for the ``balanced`` target: every class the same mass, each class volume-uniform (``tilted``).

    Let ``t_i`` be the normalised ``tilted`` weights (``rho``, ``log_proposal`` and ``log_prior`` as in
    :func:`log_weights`) and ``P_ic`` the classifier's probabilities. The weight of latent ``i`` is

        ``w_i ∝ t_i * sum_c p~_ic lambda_c``,   ``lambda_c = 1 / m_c``,   ``p~_ic = P_ic m_c / sum_k P_ik m_k``,

    where ``m`` are the class masses under ``t`` and ``p~`` the classifier's posterior adjusted to them (Bayes' rule
    for a change of class prior). The sum simplifies to ``w_i ∝ t_i / sum_k P_ik m_k``.

    **Hard labels** (one-hot rows): ``m_c = sum_i t_i P_ic`` and ``w_i = t_i / m_{c_i}``: each class carries exactly
    ``1 / C`` of the mass and, inside a class, the weights are proportional to ``t``.

    **Soft labels**: ``m`` solves the fixed point ``m_c = sum_i t_i p~_ic``, i.e. the class masses are those the
    adjusted posteriors give. It is found by iterating, from ``m = 1 / C``,

        ``m_c <- sum_i t_i P_ic m_c / sum_k P_ik m_k``

    (Saerens, Latinne and Decaestecker, Neural Computation 2002). This is the EM algorithm for the mixture
    proportions ``m`` maximising the concave ``L(m) = sum_i t_i log sum_c P_ic m_c`` over the simplex with the
    components held fixed, so ``L`` increases at every step and the iterates converge to its maximiser (Csiszár and
    Tusnády, Statistics & Decisions 1984; for hard labels after one step). At the maximiser the KKT conditions read
    ``sum_i t_i P_ic / sum_k P_ik m_k = 1`` for every class with ``m_c > 0``, which is exactly
    ``sum_i w_i P_ic = 1 / C``: the *classifier's own* soft class masses under ``w`` are equal. A class whose ``m_c``
    tends to 0 is one the pool has no mass of; it cannot be balanced (its ``lambda`` is ``inf`` and its mass stays
    below ``1 / C``).

    Args:
        log_volumes: ``(N,)`` log-volumes (``-inf`` allowed).
        class_probabilities: ``(N, C)`` non-negative rows summing to 1 (a softmax), ``C >= 1``.
        iterations, tolerance: limits of the fixed-point iteration (relative change of ``m``).

    Returns:
        :class:`BalancedWeights`: the normalised log weights, ``lambdas``, the class masses ``m`` and the
        iterations run.
    """
    tilted_weights = log_weights(log_volumes, rho=rho, log_proposal=log_proposal, log_prior=log_prior)
    probabilities = _check_probabilities(class_probabilities, tilted_weights.shape[0])
    weights = tilted_weights.exp()
    classes = probabilities.shape[1]
    masses = torch.full((classes,), 1.0 / classes, dtype=torch.float64)
    done = 0
    while done < iterations:
        done += 1
        mixture = probabilities @ masses
        ratio = torch.where(weights > 0, weights / mixture, 0.0)
        updated = masses * (ratio @ probabilities)
        updated = updated / updated.sum()
        change = float(((updated - masses).abs() / masses.clamp_min(1e-300)).max())
        masses = updated
        if change <= tolerance:
            break
    mixture = probabilities @ masses
    log_w = torch.where(weights > 0, tilted_weights - torch.log(mixture), -torch.inf)
    return BalancedWeights(_normalise(log_w), 1.0 / masses, masses, done)


def _check_probabilities(values: Tensor, count: int) -> Tensor:
    if not isinstance(values, Tensor) or values.ndim != 2 or values.shape[0] != count or values.shape[1] < 1:
        shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise InvalidArgumentError(f"class_probabilities must be a (N, C) tensor with N = {count} rows (one per "
                                   f"latent), got {shape}", field="class_probabilities")
    values = values.detach().to(torch.float64).cpu()
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()) or \
            not torch.allclose(values.sum(dim=1), torch.ones((), dtype=torch.float64), atol=1e-5):
        raise InvalidArgumentError("class_probabilities must be finite, non-negative rows summing to 1; apply "
                                   "softmax to a classifier's logits", field="class_probabilities")
    return values / values.sum(dim=1, keepdim=True)


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
