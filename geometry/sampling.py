"""``sample``: the one entry point that draws debiased latents, for the library, the service, the jobs and the CLI.

* ``auto`` (the default) — measures before it spends: a pilot of base draws gives the ESS share of the target's
  weights and the spread of ``rho * log_volume``. Where a pool of at most ``20 n`` proposals is predicted to have an
  ESS of ``4 n`` it runs SIR on that pool (reusing the pilot; systematic resampling); otherwise SMC, starting from
  the pilot. A pool that turns out worse than predicted (ESS below ``2 n``) is thrown away for SMC. The result
  says what was chosen and why.
* ``sir`` — :mod:`gendebias.geometry.sir`: weight a pool of base draws and resample it.
* ``smc`` — :mod:`gendebias.geometry.smc`: adaptive tempering with gpCN moves until the population is diverse again.
* ``mcmc`` — :mod:`gendebias.geometry.mcmc`: independent chains for a stream of samples.

Log-volumes come from ``log_volume_function`` when given (an estimator, a cache, the service's batching engine, an
analytic formula in tests), else from the generator's exact Jacobians. Every sampler reports an ESS *of the latents
it returns* (:mod:`gendebias.geometry.ess`), the distinct count, the evaluations spent and, where a budget stopped
it, the tempered target ``beta`` it reached; ``warnings`` says in words when the sample is not what was asked for.
Every random choice flows from ``seed``; the same seed on the same device gives the same latents.

Target ``balanced`` (:func:`gendebias.geometry.weights.balanced_log_weights`) needs class masses, which only a
weighted pool can estimate. ``sir`` weights its whole pool with them. ``auto`` draws a pilot of at least
:data:`BALANCE_PILOT` base latents, estimates the masses and the ESS share of the balanced weights on it, and runs
SIR (reusing the pilot; masses re-estimated on the pool) where that is predicted to work. Otherwise, and for ``smc``
and ``mcmc``, the class masses are **fixed** at ``m1 = (m_pilot + 1 / C) / 2`` and the samplers run on the tilt
``rho * log_volume - log sum_c p(c | G(z)) m1_c`` (:meth:`TemperedTarget.with_class_masses`): a fixed target keeps
every move a valid Metropolis–Hastings kernel. A pilot's masses are too noisy to use as they are (on digits-gan its
balanced weights have an ESS of about 20 of 512, some classes get mass 0, and SMC with them drew a sample with a
class KL of 0.59 nats), so they are mixed with uniform (no class is pushed by more than ``2 C``) and the drawn
latents, which then follow the target with ``m1``, are **reweighted** to the balanced target with the masses
re-estimated on them (their tilted weights are ``sum_c p(c | G(z)) m1_c``) and resampled (systematic). Their ESS is
the sampler's times the Kish share of that correction, combined with the resampling noise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeAlias

import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError, LimitExceededError
from gendebias.geometry._inputs import check_choice, check_count, check_seed
from gendebias.geometry.ess import resampled_ess
from gendebias.geometry.kernels import LogVolumeFunction, Particles, TemperedTarget
from gendebias.geometry.mcmc import MCMCSettings, MCMCTrace, mcmc
from gendebias.geometry.progress import Progress
from gendebias.geometry.resample import resample
from gendebias.geometry.sir import Drawn, SIRSettings, SIRTrace, resample_pool
from gendebias.geometry.smc import SMCSettings, SMCTrace, population_ess, smc, tilt_spread
from gendebias.geometry.weights import TARGETS, Target, balanced_log_weights, effective_sample_size, tilted

SAMPLERS = ("auto", "sir", "smc", "mcmc")
POOL_ESS_PER_DRAW = 4.0  # auto's SIR wants a pool ESS of 4 n: the drawn latents' ESS is then 0.8 n
LARGEST_POOL = 20  # auto's SIR pool is at most 20 n proposals
WORST_POOL_ESS_PER_DRAW = 2.0  # below this, auto abandons the pool for SMC
BALANCE_PILOT = 512  # base latents at least in the pilot that estimates the class masses of target "balanced"


@dataclass(frozen=True)
class SampleResult:
    """Debiased latents and what it took.

    ``latents`` ``(n, *latent_shape)`` (fewer when a budget stopped MCMC); ``log_weights`` of the drawn latents in
    the pool (SIR only); ``ess``: the effective sample size of the returned latents; ``distinct``: distinct latents;
    ``evaluations``: log-volume evaluations spent; ``sampler``: the one that ran; ``choice``: why (``"requested"``,
    or auto's measurements); ``beta``: the tempered target reached (1 unless a budget stopped SMC); ``stopped``:
    ``"done"`` or the budget that stopped it; ``warnings``: what a user must know before trusting the sample;
    ``trace``: the sampler's own record.
    """

    latents: Tensor
    log_weights: Tensor | None
    ess: float
    distinct: int
    evaluations: int
    sampler: str
    seed: int
    choice: str
    beta: float
    stopped: str
    trace: SIRTrace | SMCTrace | MCMCTrace
    warnings: tuple[str, ...] = field(default=())

    @property
    def max_weight(self) -> float | None:
        return self.trace.max_weight if isinstance(self.trace, SIRTrace) else None

    @property
    def cost_per_effective_sample(self) -> float:
        return self.evaluations / self.ess if self.ess > 0 else math.inf


Settings: TypeAlias = SIRSettings | SMCSettings | MCMCSettings


RHO_LIMIT = 1e6


def sample_options(generator: object, *, rho: float, target: str, sampler: str, seed: int | None,
                   class_probabilities: Callable[[Tensor], Tensor] | None = None) -> None:
    """Check every option of :func:`sample` that can be checked before any work (the service calls this first)."""
    check_choice("sampler", sampler, SAMPLERS)
    check_choice("target", target, TARGETS)
    if seed is not None:
        check_seed(seed)
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not abs(rho) <= RHO_LIMIT:
        raise InvalidArgumentError(f"rho must be a finite number with |rho| <= {RHO_LIMIT:g}, got {rho!r}",
                                   field="rho")
    TemperedTarget(generator, float(rho), target,
                   class_probabilities=class_probabilities)  # the prior, target and classifier checks


def sample(generator: object, n: int, *, rho: float = 1.0, target: Target = "tilted", sampler: str = "auto",
           seed: int | None = None, top_k: int | None = None, chunk_size: int | None = None,
           log_volume_function: LogVolumeFunction | None = None, max_evaluations: int | None = None,
           deadline: float | None = None, settings: Settings | None = None,
           progress: Callable[[Progress], None] | None = None,
           should_stop: Callable[[], str | None] | None = None,
           class_probabilities: Callable[[Tensor], Tensor] | None = None) -> SampleResult:
    """Draw ``n`` debiased latents from ``generator`` (a ``Generator`` with a prior) for ``target`` and ``rho``.

    Args:
        sampler: ``"auto"``, ``"sir"``, ``"smc"`` or ``"mcmc"``.
        log_volume_function: latents ``(N, ...)`` -> log-volumes ``(N,)``; default the exact ones (with ``top_k``
            and ``chunk_size``).
        max_evaluations: budget of log-volume evaluations; ``deadline``: seconds from now; ``should_stop``: called
            between sweeps, returns a reason to stop (e.g. ``"cancelled"``) or None. Each stops SMC/MCMC cleanly,
            and the result says why and which ``beta`` was reached; SIR refuses a pool larger than the budget.
        settings: :class:`SIRSettings`, :class:`SMCSettings` or :class:`MCMCSettings` for the sampler named
            (auto takes SIR's and SMC's).
        progress: called after each tempering step (SMC), kept sweep (MCMC) or pool (SIR).
        class_probabilities: latents ``(N, ...)`` -> ``(N, C)`` class probabilities of their outputs, for target
            ``"balanced"`` (module docstring); default the generator's ``classifier``.
    """
    sample_options(generator, rho=rho, target=target, sampler=sampler, seed=seed,
                   class_probabilities=class_probabilities)
    check_count("n", n)
    seed = int(torch.randint(0, 2**62, (1,))) if seed is None else check_seed(seed)
    random = torch.Generator().manual_seed(seed)
    stop_at = None if deadline is None else time.monotonic() + deadline
    goal = TemperedTarget(generator, float(rho), target, top_k, max_evaluations, stop_at, chunk_size,
                          log_volume_function, should_stop, class_probabilities=class_probabilities)
    if target == "balanced" and sampler != "sir":
        result, notes = _balanced(goal, n, sampler, settings, seed, random, progress)
        return _with_warnings(result, n, notes)
    if sampler == "sir":
        sir = settings if isinstance(settings, SIRSettings) else SIRSettings()
        result = _sir(goal, n, sir.proposals or 10 * n, sir.scheme, seed, "requested", progress)
    elif sampler == "smc":
        result = _smc(goal, n, settings if isinstance(settings, SMCSettings) else SMCSettings(), seed, random,
                      "requested", None, progress)
    elif sampler == "mcmc":
        result = _mcmc(goal, n, settings if isinstance(settings, MCMCSettings) else MCMCSettings(), seed, random,
                       progress)
    else:
        result = _auto(goal, n, settings, seed, random, progress)
    return _with_warnings(result, n)


def _auto(goal: TemperedTarget, n: int, settings: Settings | None, seed: int, random: torch.Generator,
          progress: Callable[[Progress], None] | None) -> SampleResult:
    """Pilot, then SIR where a pool of at most ``20 n`` is predicted to have ESS ``4 n``, else SMC."""
    smc_settings = settings if isinstance(settings, SMCSettings) else SMCSettings()
    scheme = "systematic"  # fewer duplicates than multinomial for the same expectation
    size = max(smc_settings.particles or n, 2)
    pilot_latents = goal.generator.sample_latents(size, seed=int(torch.randint(0, 2**62, (1,), generator=random)))
    pilot = Particles(pilot_latents, goal.log_volumes(pilot_latents), goal.log_base(pilot_latents))
    tilt = goal.tilt(1.0, pilot.log_volumes)
    share = effective_sample_size(tilt.masked_fill(~torch.isfinite(pilot.log_volumes), -math.inf)) / size
    spread = tilt_spread(goal, pilot.log_volumes)
    measured = (f"pilot of {size} base latents: weight ESS {share:.1%} of the pilot, "
                f"rho*log_volume std {spread:.2g} nats")
    pool = math.ceil(POOL_ESS_PER_DRAW * n / max(share, 1e-12))
    affordable = goal.max_evaluations is None or pool <= goal.max_evaluations
    if pool <= LARGEST_POOL * n and affordable:
        result = _sir(goal, n, max(pool, size), scheme, seed, f"sir: {measured}; a pool of {max(pool, size)} is "
                      f"predicted to give ESS {POOL_ESS_PER_DRAW:g} n", progress, pilot.latents, pilot.log_volumes)
        assert isinstance(result.trace, SIRTrace)
        if result.trace.pool_ess >= WORST_POOL_ESS_PER_DRAW * n:
            return result
        measured += f"; the pool of {result.trace.proposals} had ESS {result.trace.pool_ess:.1f} only"
        return _smc(goal, n, smc_settings, seed, random, f"smc: {measured}", None, progress)
    why = "importance weights from the base would collapse" if pool > LARGEST_POOL * n else \
        "the pool SIR needs is over the evaluation budget"
    return _smc(goal, n, smc_settings, seed, random, f"smc: {measured}; {why}", pilot, progress)


def _balanced(goal: TemperedTarget, n: int, sampler: str, settings: Settings | None, seed: int,
              random: torch.Generator, progress: Callable[[Progress], None] | None) -> tuple[SampleResult, list[str]]:
    """Target ``balanced`` with ``auto``, ``smc`` or ``mcmc`` (module docstring): a pilot estimates the class masses;
    auto runs SIR on a pool where the pilot predicts it works, otherwise the masses are fixed for SMC or MCMC."""
    smc_settings = settings if isinstance(settings, SMCSettings) else SMCSettings()
    size = max(smc_settings.particles or n, 2)
    pilot_size = max(size, BALANCE_PILOT)
    latents = goal.generator.sample_latents(pilot_size, seed=int(torch.randint(0, 2**62, (1,), generator=random)))
    volumes = goal.log_volumes(latents)
    probabilities = goal.classes(latents)
    weights = balanced_log_weights(volumes, probabilities, rho=goal.rho)
    share = effective_sample_size(weights.log_weights) / pilot_size
    masses = ", ".join(f"{float(mass):.3f}" for mass in weights.class_masses)
    measured = f"pilot of {pilot_size} base latents: balanced weight ESS {share:.1%}, class masses [{masses}]"
    notes = []
    if bool((weights.class_masses < 1e-6).any()):
        absent = torch.nonzero(weights.class_masses < 1e-6).flatten().tolist()
        notes.append(f"classes {absent} have no mass in the pilot: they cannot be balanced")
    if sampler == "auto":
        pool = math.ceil(POOL_ESS_PER_DRAW * n / max(share, 1e-12))
        affordable = goal.max_evaluations is None or pool - pilot_size <= goal.max_evaluations - goal.evaluations
        if pool <= LARGEST_POOL * n and affordable:
            size = max(pool, pilot_size)
            result = _sir(goal, n, size, "systematic", seed, f"sir: {measured}; a pool of {size} is predicted to "
                          f"give ESS {POOL_ESS_PER_DRAW:g} n", progress, latents, volumes)
            assert isinstance(result.trace, SIRTrace)
            if result.trace.pool_ess >= WORST_POOL_ESS_PER_DRAW * n:
                return result, notes
            measured += f"; the pool of {result.trace.proposals} had ESS {result.trace.pool_ess:.1f} only"
        else:
            measured += "; importance weights from the base would collapse" if pool > LARGEST_POOL * n else \
                "; the pool SIR needs is over the evaluation budget"
    masses = 0.5 * weights.class_masses + 0.5 / weights.class_masses.numel()
    fixed = goal.with_class_masses(masses)
    if sampler == "mcmc":
        result = _mcmc(fixed, n, settings if isinstance(settings, MCMCSettings) else MCMCSettings(), seed, random,
                       progress, f"requested; class masses fixed from the {measured}")
    else:
        start = torch.arange(size)
        tilt = tilted(volumes[start], goal.rho) - torch.log(probabilities[start] @ masses).to(volumes)
        initial = Particles(latents[start.to(latents.device)], tilt, fixed.log_base(latents[start.to(latents.device)]))
        choice = "requested" if sampler == "smc" else "smc"
        result = _smc(fixed, n, smc_settings, seed, random, f"{choice}; class masses fixed from the {measured}",
                      initial, progress)
    return _rebalanced(goal, result, masses, seed), notes


def _rebalanced(goal: TemperedTarget, result: SampleResult, masses: Tensor, seed: int) -> SampleResult:
    """Reweight latents drawn with the class masses ``masses`` fixed to the balanced target, the masses re-estimated
    on them, and resample as many (module docstring)."""
    count = result.latents.shape[0]
    if count == 0:
        return result
    probabilities = goal.classes(result.latents)
    correction = balanced_log_weights(torch.log(probabilities @ masses), probabilities, rho=1.0)
    share = effective_sample_size(correction.log_weights) / count
    indices = resample(correction.log_weights, count, scheme="systematic", seed=seed).to(result.latents.device)
    latents = result.latents[indices]
    estimated = ", ".join(f"{float(mass):.3f}" for mass in correction.class_masses)
    choice = (f"{result.choice}; reweighted to the class masses [{estimated}] estimated on the {count} drawn latents "
              f"(correction weight ESS {share:.1%})")
    return SampleResult(**{**result.__dict__, "latents": latents, "ess": resampled_ess(result.ess * share, count),
                           "distinct": _distinct(latents), "choice": choice})


def _sir(goal: TemperedTarget, n: int, proposals: int, scheme: str, seed: int, choice: str,
         progress: Callable[[Progress], None] | None, known: Tensor | None = None,
         known_volumes: Tensor | None = None) -> SampleResult:
    """SIR on a pool of ``proposals`` base draws; the first ``len(known)`` of them may be given, already evaluated."""
    reuse = 0 if known is None else known.shape[0]
    if goal.max_evaluations is not None and goal.evaluations + proposals - reuse > goal.max_evaluations:
        raise LimitExceededError(f"SIR needs {proposals} log-volume evaluations for its pool, over the budget of "
                                 f"{goal.max_evaluations}; lower proposals or raise max_evaluations",
                                 field="max_evaluations")
    fresh = goal.generator.sample_latents(proposals - reuse, seed=seed)
    volumes = goal.log_volumes(fresh)
    pool = fresh if known is None else torch.cat([known, fresh])
    if known_volumes is not None:
        volumes = torch.cat([known_volumes.to(volumes), volumes])
    log_proposal = goal.generator.log_prior(pool) if goal.target == "uniform" else None
    classes = goal.classes(pool) if goal.target == "balanced" else None
    drawn: Drawn = resample_pool(pool, volumes, n, rho=goal.rho, target=goal.target, log_proposal=log_proposal,
                                 scheme=scheme, seed=seed, class_probabilities=classes)
    if progress is not None:
        progress(Progress("sir", 1.0, goal.evaluations, 1, drawn.trace.pool_ess))
    return SampleResult(drawn.latents, drawn.log_weights, drawn.ess, drawn.distinct, goal.evaluations, "sir", seed,
                        choice, 1.0, "done", drawn.trace)


def _smc(goal: TemperedTarget, n: int, settings: SMCSettings, seed: int, random: torch.Generator, choice: str,
         initial: Particles | None, progress: Callable[[Progress], None] | None) -> SampleResult:
    particles = max(settings.particles or n, n, 2) if initial is None else initial.latents.shape[0]
    population, ancestors, trace = smc(goal, settings, particles, random=random, initial=initial, progress=progress)
    keep = None
    if particles > n:  # a random subset: systematic resampling leaves families next to each other
        keep = torch.randperm(particles, generator=random)[:n]
    latents = population.latents if keep is None else population.latents[keep.to(population.latents.device)]
    ess = population_ess(population, ancestors, keep, islands=trace.islands)
    return SampleResult(latents, None, ess, _distinct(latents), goal.evaluations, "smc", seed, choice, trace.beta,
                        trace.stopped, trace)


def _mcmc(goal: TemperedTarget, n: int, settings: MCMCSettings, seed: int, random: torch.Generator,
          progress: Callable[[Progress], None] | None, choice: str = "requested") -> SampleResult:
    chains = settings.chains or min(n, 32)
    latents, ess, trace = mcmc(goal, settings, n, max(chains, 1), random=random, progress=progress)
    return SampleResult(latents, None, ess, _distinct(latents), goal.evaluations, "mcmc", seed, choice, 1.0,
                        trace.stopped, trace)


def _with_warnings(result: SampleResult, n: int, notes: list[str] | None = None) -> SampleResult:
    """Say in words what a user must know before trusting the sample."""
    warnings = list(notes or [])
    if result.stopped != "done" and result.beta < 1.0:
        warnings.append(f"stopped by {result.stopped} at beta = {result.beta:.3g}: the latents follow the tempered "
                        f"target base * volume^(beta * rho), not the one asked for")
    elif result.stopped != "done":
        warnings.append(f"stopped by {result.stopped} during the sweeps after the last tempering step: the latents "
                        f"follow the target asked for but have not forgotten that step's resampling, so they carry "
                        f"more of its O(1/N) bias and correlation than a finished run")
    if isinstance(result.trace, SMCTrace) and result.trace.stuck:
        warnings.append(f"the moves could not make the population diverse again at {len(result.trace.stuck)} "
                        f"tempering steps (first at beta = {result.trace.stuck[0]:.3g}): the latents are correlated "
                        f"beyond what the ESS estimate sees; more particles or SMCSettings(max_moves=...) help")
    count = result.latents.shape[0]
    if count < n:
        warnings.append(f"only {count} of the {n} latents asked for")
    if count and result.ess < 0.5 * count:
        warnings.append(f"effective sample size {result.ess:.1f} of {count} latents: the sample is collapsed or "
                        f"correlated (sampler='auto' or 'smc' avoid this)")
    if count and result.distinct < 0.9 * count:
        warnings.append(f"only {result.distinct} distinct latents of {count}")
    return replace(result, warnings=tuple(warnings))


def _distinct(latents: Tensor) -> int:
    return int(torch.unique(latents.flatten(1), dim=0).shape[0]) if latents.shape[0] else 0
