"""Metropolis–Hastings moves in latent space that leave a tempered debiasing target invariant.

Tempered target, with an inverse temperature ``beta`` in [0, 1] (``docs/samplers.md``):

    pi_beta(z) ∝ base(z) * exp(beta * rho * log_volume(z))

with ``base`` the latent prior (target ``tilted``) or the uniform density on the prior's bounded support (target
``uniform``). Target ``balanced`` runs the moves on :meth:`TemperedTarget.with_class_masses`: the prior as base and
the balanced log weight with class masses held fixed as the tilt. On a piecewise-affine generator ``log_volume`` is
constant on tiles, so its gradient is zero almost everywhere: the moves are gradient-free.

The move is the generalised preconditioned Crank–Nicolson proposal (gpCN; Rudolf & Sprungk, "On a generalization of
the preconditioned Crank–Nicolson Metropolis algorithm", Found. Comput. Math. 2018, arXiv:1504.03461) around a
Gaussian reference ``g = N(m, C)``:

    z' = m + sqrt(1 - s^2) (z - m) + s L xi,   L L^T = C,  xi ~ N(0, I)

which is reversible for ``g``, so the acceptance ratio is ``[pi_beta(z') / g(z')] / [pi_beta(z) / g(z)]``. With
``g`` the ``N(0, I)`` prior this is plain pCN (Cotter, Roberts, Stuart & White, Statistical Science 2013), whose
acceptance does not degrade with the latent dimension. The samplers fit ``g`` to their current population (mean and
a shrunk covariance, :func:`fitted_reference`): where the target is close to a Gaussian the proposal is close to an
independent draw from it, and the particles forget their starting points in a few sweeps. Choosing the kernel from
the population is the usual adaptive SMC practice (Beskos, Jasra, Kantas & Thiery, Ann. Appl. Probab. 2016); within
one sweep the reference and the move are fixed, so each sweep is a valid MH kernel. A move changes all coordinates
or a random block of them (:mod:`gendebias.geometry.proposals`, which also holds the references and the adaptation).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError
from gendebias.geometry.activations import activation_patterns
from gendebias.geometry.ess import finite_log_volumes
from gendebias.geometry.proposals import INFLATION, Move, Reference, fitted_reference, gpcn_proposal, prior_reference
from gendebias.geometry.surrogate import Surrogate, fitted_surrogate, pattern_offered
from gendebias.geometry.volume import log_volume
from gendebias.geometry.weights import tilted

LogVolumeFunction = Callable[[Tensor], Tensor]
"""Maps latents ``(N, *latent_shape)`` to their log-volumes ``(N,)`` float64 (``-inf`` where rank deficient)."""


@dataclass
class TemperedTarget:
    """A generator with a prior (``sample_latents``, ``log_prior``, ``prior.name``), ``rho`` and the target; computes
    log-volumes with ``log_volume_function`` (default: the exact ones of the generator, with ``top_k`` and
    ``chunk_size``), counts the evaluations and enforces the budget: ``max_evaluations``, ``deadline`` (a
    ``time.monotonic()`` value) and ``should_stop`` (a callable returning a reason to stop, e.g. ``"cancelled"``).
    Target ``balanced`` needs ``class_probabilities`` (latents -> ``(N, C)``; default the generator's classifier)."""

    generator: Any
    rho: float
    target: Literal["tilted", "uniform", "balanced"]
    top_k: int | None = None
    max_evaluations: int | None = None
    deadline: float | None = None
    chunk_size: int | None = None
    log_volume_function: LogVolumeFunction | None = None
    should_stop: Callable[[], str | None] | None = None
    evaluations: int = 0
    class_probabilities: Callable[[Tensor], Tensor] | None = None

    def __post_init__(self) -> None:
        for attribute in ("sample_latents", "log_prior", "prior"):
            if not hasattr(self.generator, attribute):
                raise InvalidArgumentError(
                    f"the samplers need a Generator with a prior (sample_latents, log_prior); got "
                    f"{type(self.generator).__name__}. Wrap the module: Generator(module, latent_shape=...)")
        prior = getattr(self.generator.prior, "name", "")
        if self.target == "uniform" and prior not in ("uniform", "ball"):
            raise InvalidArgumentError(f"target='uniform' needs a bounded uniform prior ('uniform' box or 'ball'), "
                                       f"this generator's prior is {prior!r}", field="target")
        if self.target == "balanced" and self.class_probabilities is None:
            if getattr(self.generator, "classifier", None) is None:
                raise InvalidArgumentError(
                    f"target='balanced' needs a classifier for the generator's outputs; "
                    f"{getattr(self.generator, 'name', 'this generator')} has none (add classifier = ... to its "
                    "spec, or pass class_probabilities)", field="target")
            self.class_probabilities = self.generator.class_probabilities

    def affordable(self, count: int) -> str | None:
        """None if ``count`` more evaluations fit the budget, else the reason to stop."""
        if self.should_stop is not None and (reason := self.should_stop()) is not None:
            return reason
        if self.max_evaluations is not None and self.evaluations + count > self.max_evaluations:
            return "max_evaluations"
        if self.deadline is not None and time.monotonic() > self.deadline:
            return "deadline"
        return None

    def log_volumes(self, latents: Tensor) -> Tensor:
        self.evaluations += latents.shape[0]
        return self._log_volumes(latents)

    def features(self, latents: Tensor) -> Tensor:
        """``(N, W)`` float64 features of latents for the surrogate: the flattened latents and, where the generator
        has piecewise-linear activations, its activation pattern (one forward pass, no Jacobian; not counted as
        an evaluation). A piecewise-affine generator's log-volume is a function of its activation pattern."""
        flat = latents.flatten(1).to(torch.float64)
        patterns = activation_patterns(self.generator, latents)
        return torch.cat([flat, *(p.flatten(1).to(flat) for p in patterns)], dim=1)

    def classes(self, latents: Tensor) -> Tensor:
        """``(N, C)`` class probabilities of the latents' outputs (target ``balanced``)."""
        if self.class_probabilities is None:
            raise InvalidArgumentError(f"target={self.target!r} has no class probabilities")
        values = self.class_probabilities(latents)
        if values.ndim != 2 or values.shape[0] != latents.shape[0]:
            raise InvalidArgumentError(f"the class probabilities have shape {tuple(values.shape)} for "
                                       f"{latents.shape[0]} latents; they must be (N, C)")
        return values.to(torch.float64).cpu()

    def with_class_masses(self, class_masses: Tensor) -> TemperedTarget:
        """The ``balanced`` target with the class masses ``m`` ``(C,)`` held fixed, as a ``tilted`` one for SMC and
        MCMC: ``rho = 1`` and the cached "log-volume" is ``rho * log_volume(z) - log sum_c p(c | G(z)) m_c``, the
        balanced log weight of ``weights.balanced_log_weights`` with ``m`` not re-estimated. Evaluations and the
        budget carry over."""
        if self.target != "balanced":
            raise InvalidArgumentError(f"with_class_masses is for target='balanced', not {self.target!r}")
        masses = class_masses.to(torch.float64).cpu()

        def balanced_log_weight(latents: Tensor) -> Tensor:
            volumes = self._log_volumes(latents)
            mixture = self.classes(latents) @ masses
            return tilted(volumes, self.rho) - torch.log(mixture).to(volumes.device)

        return replace(self, rho=1.0, target="tilted", log_volume_function=balanced_log_weight,
                       class_probabilities=None, evaluations=self.evaluations)

    def _log_volumes(self, latents: Tensor) -> Tensor:
        if self.log_volume_function is not None:
            values = self.log_volume_function(latents)
            if tuple(values.shape) != (latents.shape[0],):
                raise InvalidArgumentError(f"the log-volume function returned shape {tuple(values.shape)} for "
                                           f"{latents.shape[0]} latents; it must return one value per latent")
            return values.to(torch.float64)
        return log_volume(self.generator, latents, top_k=self.top_k, chunk_size=self.chunk_size)

    def log_base(self, latents: Tensor) -> Tensor:
        """``log base(z)`` up to a constant: the prior (tilted) or 0 on the support (uniform)."""
        log_prior = self.generator.log_prior(latents).to(torch.float64)
        return torch.where(torch.isfinite(log_prior), 0.0, -math.inf) if self.target == "uniform" else log_prior

    def tilt(self, beta: float, log_volumes: Tensor) -> Tensor:
        """``beta * rho * log_volume`` with ``0 * -inf = 0``."""
        scale = beta * self.rho
        return torch.zeros_like(log_volumes) if scale == 0 else scale * log_volumes


@dataclass
class Particles:
    """Latents with their cached log-volumes and log base densities."""

    latents: Tensor
    log_volumes: Tensor
    log_base: Tensor

    def take(self, indices: Tensor) -> Particles:
        return Particles(self.latents[indices], self.log_volumes[indices], self.log_base[indices])


def metropolis_sweep(target: TemperedTarget, particles: Particles, beta: float, move: Move | float,
                     reference: Reference, random: torch.Generator,
                     surrogate: Surrogate | None = None) -> tuple[Particles, Tensor]:
    """One gpCN Metropolis–Hastings move of every particle (``move``: a :class:`Move`, or a step for a move of
    all coordinates); returns the new particles and the ``(N,)`` accepted mask. Without a ``surrogate``
    log-volumes are evaluated for every proposal (``N`` evaluations).

    With one, the move is delayed acceptance (Christen & Fox, J. Comput. Graph. Stat. 2005): a proposal first
    passes a screen that uses the surrogate log-volume ``s`` in place of the exact one,
    ``min(1, r_s)`` with ``log r_s = [beta rho s(z') + log base(z') - log g(z')] - [same at z]``, and only the
    proposals that pass are evaluated exactly and accepted with ``min(1, r / r_s)``,
    ``log(r / r_s) = beta rho [(lv(z') - s(z')) - (lv(z) - s(z))]``. For a surrogate fixed during the move the
    two stages together satisfy detailed balance with respect to ``pi_beta`` whatever the surrogate's quality: a
    bad one only makes the second stage reject more."""
    latents = particles.latents
    flat = latents.flatten(1).to(torch.float64)
    move = move if isinstance(move, Move) else Move(move)
    reference = reference.to(flat.device) if move.block is None else reference.inflated(INFLATION).to(flat.device)
    moved = gpcn_proposal(flat, move, reference, random)
    proposal = moved.to(latents.dtype).reshape(latents.shape)
    log_base = target.log_base(proposal)
    uniforms = torch.rand(latents.shape[0], generator=random, dtype=torch.float64)
    guess = torch.zeros_like(particles.log_volumes) if surrogate is None else \
        surrogate.log_volumes(_features(target, surrogate, latents))
    guess_moved = torch.zeros_like(log_base) if surrogate is None else \
        surrogate.log_volumes(_features(target, surrogate, proposal))
    # the first stage: a surrogate screen (all pass without a surrogate)
    log_ratio = (target.tilt(beta, guess_moved) + log_base - reference.log_density(moved)) - \
                (target.tilt(beta, guess) + particles.log_base - reference.log_density(flat))
    log_ratio = torch.nan_to_num(log_ratio.cpu(), nan=-math.inf)
    log_ratio = torch.where(torch.isneginf(log_base.cpu()), -math.inf, log_ratio)
    screened = (uniforms.log() < log_ratio) if surrogate is not None else torch.ones_like(uniforms, dtype=torch.bool)
    rows = torch.nonzero(screened).flatten().to(latents.device)
    log_volumes = particles.log_volumes.clone()
    if rows.numel():
        log_volumes[rows.to(log_volumes.device)] = target.log_volumes(proposal[rows]).to(log_volumes)
    second = target.tilt(beta, log_volumes - guess_moved.to(log_volumes)) - \
        target.tilt(beta, particles.log_volumes - guess.to(log_volumes))
    second = torch.nan_to_num(second.cpu(), nan=-math.inf)
    if surrogate is None:  # one stage: the uniform decides on the whole ratio
        accepted = screened & (uniforms.log() < log_ratio + second)
    else:
        later = torch.rand(latents.shape[0], generator=random, dtype=torch.float64)
        accepted = screened & (later.log() < second)
    accepted = accepted.to(latents.device)
    keep = accepted.reshape(-1, *([1] * (latents.ndim - 1)))
    result = Particles(torch.where(keep, proposal, latents), torch.where(accepted, log_volumes, particles.log_volumes),
                       torch.where(accepted, log_base, particles.log_base))
    return result, accepted


def _features(target: TemperedTarget, surrogate: Surrogate, latents: Tensor) -> Tensor:
    """What ``surrogate`` reads: the latents alone when its columns end before the activation pattern's."""
    return target.features(latents) if surrogate.columns[1] is None else latents.flatten(1).to(torch.float64)


def ensemble_sweep(target: TemperedTarget, particles: Particles, beta: float, move: Move | float, halves: Tensor,
                   random: torch.Generator, *, acceptance: Literal["exact", "delayed"] = "exact",
                   residual_limit: float = math.inf) -> tuple[Particles, Tensor]:
    """One gpCN move of every particle, the reference fitted to the *other* half of the population.

    A reference fitted to the particles it moves depends on each particle's own state, and the move is then no
    longer invariant: with 200 particles in 64 dimensions it biased a marginal by 20 standard errors. So the
    population is split by ``halves`` (``(N,)`` bool; resampled copies of one ancestor must share a half): the
    first half moves around a Gaussian fitted to the second, then the second around one fitted to the moved first
    (the complementary-ensemble construction of Goodman & Weare, Comm. App. Math. Comp. Sci. 2010). Each half's
    kernel is fixed given the other half, so the pair of moves leaves the product target invariant.

    ``acceptance="delayed"``: each half's moves are delayed acceptance (:func:`metropolis_sweep`) screened by a
    ridge surrogate (:func:`~gendebias.geometry.surrogate.fitted_surrogate`) fitted, like the reference, to the
    other half's current latents and their exact log-volumes only. The surrogate is then one more part of a kernel
    that is fixed given the other half, and the argument above holds unchanged; one fitted to the moving particles'
    own states (or to anything that remembers them, such as their earlier proposals) would make the kernel depend on
    the state it moves and break it. Where the surrogate's leave-one-out error times ``|beta rho|`` exceeds
    ``residual_limit`` nats (or there is too little to fit), that half moves with exact acceptance.
    """
    accepted = torch.zeros(particles.latents.shape[0], dtype=torch.bool, device=particles.latents.device)
    for moving in (halves, ~halves):
        chosen = torch.nonzero(moving).flatten()
        others = torch.nonzero(~moving).flatten()
        if chosen.numel() == 0:
            continue
        reference = fitted_reference(particles.latents[others]) if others.numel() > 1 else \
            prior_reference(particles.latents[0].numel())
        surrogate = screen(target, particles.take(others), beta, residual_limit) if acceptance == "delayed" else None
        moved, moved_accepted = metropolis_sweep(target, particles.take(chosen), beta, move, reference, random,
                                                 surrogate)
        particles = Particles(particles.latents.index_copy(0, chosen, moved.latents),
                              particles.log_volumes.index_copy(0, chosen.to(particles.log_volumes.device),
                                                               moved.log_volumes),
                              particles.log_base.index_copy(0, chosen.to(particles.log_base.device), moved.log_base))
        accepted[chosen] = moved_accepted
    return particles, accepted


def screen(target: TemperedTarget, fitted_to: Particles, beta: float, residual_limit: float) -> Surrogate | None:
    """The surrogate fitted to ``fitted_to`` if its leave-one-out error, scaled by ``|beta rho|``, is at most
    ``residual_limit`` nats; else None (exact acceptance)."""
    split = fitted_to.latents[0].numel()
    offered = pattern_offered(fitted_to.latents.shape[0], split)  # not offered: skip the pattern's forward pass
    features = target.features(fitted_to.latents) if offered else fitted_to.latents.flatten(1).to(torch.float64)
    surrogate = fitted_surrogate(features, fitted_to.log_volumes, split=split)
    if surrogate is None or abs(beta * target.rho) * surrogate.residual > residual_limit:
        return None
    return surrogate


def family_halves(ancestors: Tensor, random: torch.Generator) -> Tensor:
    """``(N,)`` bool: a random half of the families given by ``ancestors`` ``(N,)`` (copies of one ancestor stay
    together)."""
    size = int(ancestors.max()) + 1 if ancestors.numel() else 0
    side = torch.randperm(size, generator=random) % 2 == 0
    return side[ancestors.cpu()]


def correlation_with_start(start: Particles, now: Particles) -> float:
    """How much the particles still remember where a run of moves started: the larger of the mean, over the latent
    coordinates and the log-volume, of the correlation across particles between the start and now, and the
    log-volume's own (0 when they forgot). The log-volume is named apart because reweighting biases the
    population along it, and one column among the coordinates' can stay correlated while their mean has faded. On
    the 64-dimensional hinge (32 runs) adding it moved the bias only from -3.3 to -3.1 SE at a threshold of 0.1;
    the threshold of 0.05 (:class:`~gendebias.geometry.smc.SMCSettings`) is what removed it."""
    before = torch.cat([start.latents.flatten(1).to(torch.float64).cpu(),
                        finite_log_volumes(start.log_volumes)[:, None]], 1)
    after = torch.cat([now.latents.flatten(1).to(torch.float64).cpu(), finite_log_volumes(now.log_volumes)[:, None]], 1)
    before, after = before - before.mean(0), after - after.mean(0)
    scale = (before.norm(dim=0) * after.norm(dim=0))
    usable = scale > 0
    if not bool(usable.any()):
        return 0.0
    correlations = (before * after).sum(0)[usable] / scale[usable]
    volume = correlations[-1] if bool(usable[-1]) else correlations.new_tensor(-1.0)
    return max(float(correlations.mean()), float(volume))
