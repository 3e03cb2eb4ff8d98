"""Sequential Monte Carlo with adaptive tempering from the prior to the debiasing target.

Particles start from the base (``beta = 0``: the prior, or uniform on the region). Each step raises ``beta`` as far
as it can while the effective sample size of the incremental weights ``exp((beta' - beta) rho log_volume)`` stays at
``ess_threshold`` of the particles (bisection), accumulates the log normalising constant, resamples (systematic),
and moves the particles with gpCN Metropolis–Hastings sweeps around a Gaussian fitted to the population
(:mod:`gendebias.geometry.kernels`) until they are diverse again (their genealogy ESS; after the last step also
until they have forgotten where it started, see :class:`SMCSettings`). It ends at ``beta = 1`` (Del Moral, Doucet &
Jasra, JRSS-B 2006; adaptive tempering as in Jasra, Stephens, Doucet & Tsagaris, Scand. J. Stat. 2011).

At large log-volume spreads (:data:`ISLAND_SPREAD`) the particles form independent islands (Vergé, Dubarry,
Del Moral & Moulines, Statistics and Computing 2015): each island is reweighted and resampled on its own, so no
particle ever descends from another island's. The effective sample size reported for the final population is then
the smaller of two estimates: from its genealogy
(:func:`gendebias.geometry.ess.genealogy_ess`), which sees resampled copies that the moves have not yet separated,
and from the spread of the islands' means (:func:`gendebias.geometry.ess.island_ess`), which also sees a population
whose moves mixed too slowly for it to reach the target (a shared drift no genealogy shows: measured on a
256-dimensional hinge, the genealogy alone reported 48 where the replicates' spread gave 3). Neither is the last
step's incremental weights' ESS, which says nothing about how correlated the resampled copies still are.

A budget (``max_evaluations``, deadline, a stop request) ends it cleanly before a sweep it cannot afford; the trace
then says which ``beta`` it reached, and its particles target ``pi_beta``, not ``pi``. A step is not started (no
resampling) unless the budget leaves room for as many sweeps as the last step needed, so a budget stop returns the
last diverse population rather than resampled copies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import Tensor

from gendebias.errors import DegenerateWeightsError, InvalidArgumentError
from gendebias.geometry.ess import genealogy_ess, island_ess, statistics
from gendebias.geometry.kernels import Particles, TemperedTarget, correlation_with_start, ensemble_sweep, family_halves
from gendebias.geometry.progress import Progress
from gendebias.geometry.proposals import MoveChoice, initial_choice, whitened_jump
from gendebias.geometry.resample import resample
from gendebias.geometry.weights import effective_sample_size

LAGS = 50  # resampling steps back whose families the ESS estimate looks at
ISLAND_SIZE = 32  # fewest particles per island: smaller ones make the tempering schedule and the moves noisy
ISLANDS = 4
ISLAND_SPREAD = 10.0
"""Islands make the reported ESS honest where the moves cannot mix: on a 256-dimensional hinge with a 20-nat spread
(8 runs of 200) the genealogy alone reported an ESS of 48 where the replicates' spread gave 3; with 4 islands it
reported 35 where they gave 27. They cost bias where the moves do mix, as each island's reweighting has the O(1/N)
bias of its own size: on a 64-dimensional hinge (4.6 nats, 16 runs) 4 islands left -3.5 SE, one population -1.1 SE.
So the default takes islands at spreads of 10 nats and more only."""


RESIDUAL_LIMIT = 4.0
"""Delayed acceptance pays while the surrogate's error at the current temperature is small: measured on the hinges
of ``benchmarks/samplers.py``, at 0.7 nats of ``beta * rho`` times the leave-one-out residual 22% of the proposals
needed an exact evaluation, at 3.2 nats 55%, from 4 nats on two thirds or more (80% at 6-7 nats), while the lower
acceptance of the two stages shrinks the step. So above 4 nats the moves are exact."""
MAX_MOVES = {"delayed": 200, "exact": 300}
"""Sweeps per tempering step at most, by acceptance. On the 64-dimensional hinge (4.6 nats) with delayed acceptance
the steps took 30-64 sweeps, and the last ran to 200 with its correlation with the step's start still 0.25 (seed 0;
over 32 runs the bias was -0.6 SE); 100 had left a measured ESS of 64 (32 runs, before the pattern surrogate).
Exact acceptance is the default at spreads of 10 nats and more, where every step needs many: on the
256-dimensional hinge (20 nats, 8 runs, block moves) 100 sweeps ran out at most steps, and 300 gave a measured ESS
of 93 (4 islands) or 201 (one population)."""
DELAYED_SPREAD = ISLAND_SPREAD
"""``acceptance="auto"`` screens with the surrogate only below this spread of ``rho * log_volume`` (nats, base
particles). On the 256-dimensional hinge (20 nats, 8 runs; moves of all coordinates, a surrogate linear in the
latents) delayed acceptance with 200 sweeps left a bias of 10.1 SE and a measured ESS of 11 (reported 34) for
50,299 evaluations per measured effective sample, where exact acceptance with 100 sweeps gave 5.4 SE, 27
(reported 35) and 12,237: above 4 nats of surrogate error the moves are exact anyway, and the early sweeps'
smaller steps leave a population that mixes worse."""


@dataclass(frozen=True)
class SMCSettings:
    """``particles`` (default ``n``); each step keeps ``ess_threshold`` of the particles' ESS; after each
    resampling, sweeps run until the population's genealogy ESS is ``step_diversity`` of the particles
    (``diversity`` after the last step), at least ``min_moves`` and at most ``max_moves`` of them. The particles
    form up to ``islands`` independent islands of at least :data:`ISLAND_SIZE` each (1: one population; None:
    :data:`ISLANDS` where the base particles' ``rho * log_volume`` spreads over :data:`ISLAND_SPREAD` nats or
    more, where moves cannot mix and only the islands' spread shows it, else one). After
    the last step the sweeps also go on until the particles' correlation with where that step started is at most
    ``final_correlation`` (:func:`~gendebias.geometry.kernels.correlation_with_start`): the O(1/N) bias of the
    reweighting and resampling only fades as the moves mix (on a 16-dimensional hinge, 2 final sweeps left a 3.5 SE
    bias over 32 runs that 15 removed; on the 64-dimensional hinge with block moves and an inflated reference, 0.1
    left -3.1 SE over 32 runs and 0.05 -1.4 SE for 14% more evaluations). ``acceptance``:
    ``"delayed"`` screens each proposal with a ridge surrogate of the log-volume fitted to the other half of the
    population and evaluates only those that pass (:func:`~gendebias.geometry.kernels.ensemble_sweep`); a half
    whose surrogate errs by more than ``residual_limit`` nats of ``beta * rho * log_volume`` (leave-one-out) moves
    with ``"exact"`` acceptance, every proposal evaluated. ``"auto"``: delayed where the base particles'
    ``rho * log_volume`` spreads less than :data:`DELAYED_SPREAD` nats, else exact. ``max_moves`` None:
    :data:`MAX_MOVES` of the acceptance used. See :data:`RESIDUAL_LIMIT`."""

    particles: int | None = None
    ess_threshold: float = 0.5
    diversity: float = 0.9
    step_diversity: float = 0.8
    min_moves: int = 1
    max_moves: int | None = None
    islands: int | None = None
    final_correlation: float = 0.05
    acceptance: Literal["auto", "exact", "delayed"] = "auto"
    residual_limit: float = RESIDUAL_LIMIT

    def __post_init__(self) -> None:
        # ess_threshold 1 is refused: rounding leaves the ESS of even equal weights under N, so no step would pass
        checks = {"particles": self.particles is None or self.particles >= 1,
                  "ess_threshold": 0.0 < self.ess_threshold < 1.0,
                  "diversity": 0.0 <= self.diversity <= 1.0, "step_diversity": 0.0 <= self.step_diversity <= 1.0,
                  "min_moves": self.min_moves >= 0,
                  "max_moves": self.max_moves is None or self.max_moves >= max(self.min_moves, 1),
                  "islands": self.islands is None or self.islands >= 1,
                  "final_correlation": -1.0 <= self.final_correlation <= 1.0,
                  "acceptance": self.acceptance in ("auto", "exact", "delayed"),
                  "residual_limit": self.residual_limit >= 0}
        for name, valid in checks.items():
            if not valid:
                raise InvalidArgumentError(f"SMCSettings.{name} = {getattr(self, name)!r} is out of range: particles "
                                           ">= 1, ess_threshold in (0, 1), diversity and step_diversity in [0, 1], "
                                           "min_moves >= 0, max_moves >= max(min_moves, 1), islands >= 1, "
                                           "final_correlation in [-1, 1], acceptance 'auto', 'exact' or 'delayed', "
                                           "residual_limit >= 0", field=name)


@dataclass
class SMCTrace:
    """What happened, step by step: ``schedule`` (beta after each step), ``step_ess`` (ESS of the incremental
    weights, before resampling), ``acceptance`` (mean over the step's sweeps), ``step_sizes`` (of the moves of all
    coordinates), ``blocks`` (coordinates per block move) and ``blocked`` (the share of sweeps that moved blocks;
    :class:`~gendebias.geometry.proposals.MoveChoice`), ``moves`` (sweeps
    run), ``correlation`` (with the step's start, after its sweeps), ``diversity`` (the population's genealogy ESS
    after them), ``stuck`` (the betas whose sweeps ran out with the population's ESS under half the particles);
    ``log_normalizer`` estimates ``log E_base[exp(rho log_volume)]`` (the mean of the islands' estimates);
    ``particles`` the population size; ``islands`` how many independent islands it forms (particle ``i`` is in
    island ``i % islands``); ``delayed`` whether the moves used delayed acceptance."""

    particles: int = 0
    islands: int = 1
    schedule: list[float] = field(default_factory=list)
    step_ess: list[float] = field(default_factory=list)
    acceptance: list[float] = field(default_factory=list)
    step_sizes: list[float] = field(default_factory=list)
    blocks: list[int] = field(default_factory=list)
    blocked: list[float] = field(default_factory=list)
    moves: list[int] = field(default_factory=list)
    correlation: list[float] = field(default_factory=list)
    diversity: list[float] = field(default_factory=list)
    stuck: list[float] = field(default_factory=list)
    log_normalizer: float = 0.0
    stopped: str = "done"
    delayed: bool = False

    @property
    def beta(self) -> float:
        return self.schedule[-1] if self.schedule else 0.0


def smc(target: TemperedTarget, settings: SMCSettings, particles: int, *, random: torch.Generator,
        initial: Particles | None = None,
        progress: Callable[[Progress], None] | None = None) -> tuple[Particles, list[Tensor], SMCTrace]:
    """Run adaptive-tempering SMC with ``particles`` particles (or the base draws ``initial``, already evaluated).

    Returns the final population, each particle's ancestors ``1..LAGS`` resampling steps back (for
    :func:`~gendebias.geometry.ess.genealogy_ess`) and the trace.
    """
    if initial is None:
        seed = int(torch.randint(0, 2**62, (1,), generator=random))
        latents = target.generator.sample_latents(particles, seed=seed)
        initial = Particles(latents, target.log_volumes(latents), target.log_base(latents))
    population = initial
    particles = population.latents.shape[0]
    if target.rho < 0 and bool(torch.isneginf(population.log_volumes).any()):
        raise DegenerateWeightsError("rho < 0 gives infinite weight to rank-deficient latents (log_volume -inf)")
    spread = tilt_spread(target, population.log_volumes)
    wanted_islands = settings.islands if settings.islands is not None else ISLANDS if spread >= ISLAND_SPREAD else 1
    settings = resolved(settings, spread)
    islands = max(1, min(wanted_islands, particles // ISLAND_SIZE))
    members = [torch.arange(island, particles, islands) for island in range(islands)]  # island i % islands
    trace, beta, move = SMCTrace(particles=particles, islands=islands, delayed=settings.acceptance == "delayed"), \
        0.0, initial_choice(population.latents)
    lineage: list[Tensor] = []
    log_normalizers = torch.zeros(islands, dtype=torch.float64)
    while beta < 1.0:
        # resample only with room for the moves that make the population diverse again (as many sweeps as the
        # last step took): a budget that ends between the two would return copies instead of a sample
        needed = particles * max(trace.moves[-1] if trace.moves else settings.min_moves, 1)
        if (reason := target.affordable(needed)) is not None:
            trace.stopped = reason
            break
        next_beta, increments = _next_temperature(target, population.log_volumes, beta, settings.ess_threshold,
                                                  members)
        parents = torch.empty(particles, dtype=torch.long)
        for island, rows in enumerate(members):
            own = increments[rows.to(increments.device)]
            log_normalizers[island] += float(torch.logsumexp(own, 0)) - math.log(rows.numel())
            chosen = resample(own, rows.numel(), scheme="systematic",
                              seed=int(torch.randint(0, 2**62, (1,), generator=random)))
            parents[rows] = rows[chosen.cpu()]
        trace.step_ess.append(effective_sample_size(increments))
        population, beta = population.take(parents.to(population.latents.device)), next_beta
        lineage.append(parents)
        trace.schedule.append(beta)
        population, move = _move(target, settings, population, beta, move, _ancestors(lineage), trace, random)
        if progress is not None:
            progress(Progress("smc", beta, target.evaluations, len(trace.schedule), trace.step_ess[-1]))
        if trace.stopped != "done":
            break
    trace.log_normalizer = float(torch.logsumexp(log_normalizers, 0)) - math.log(islands)
    return population, _ancestors(lineage), trace


def _move(target: TemperedTarget, settings: SMCSettings, population: Particles, beta: float, move: MoveChoice,
          ancestors: list[Tensor], trace: SMCTrace, random: torch.Generator) -> tuple[Particles, MoveChoice]:
    """Sweeps at ``beta`` until the population is diverse again: its genealogy ESS (:func:`population_ess`)
    reaches the wanted share of the particles (or the budget stops them). Each half of the families moves around a
    Gaussian fitted to the other half (:func:`ensemble_sweep`). The halves mix the islands: where islands drift
    apart, a reference fitted to other islands only is off for the ones it moves (on the 256-dimensional hinge the
    step shrank to 0.04 and the share of positive coordinates came out 32 SE low)."""
    halves = family_halves(ancestors[0], random)
    start = population
    rates: list[float] = []
    blocks = 0
    count = population.latents.shape[0]
    final = beta >= 1.0
    wanted = (settings.diversity if final else settings.step_diversity) * count
    islands = trace.islands if final else 1  # the islands' spread only matters for what is returned
    diversity = population_ess(population, ancestors, islands=islands)
    remembered = 1.0 if final else -math.inf  # how much the particles still recall the step's start
    most = settings.max_moves or MAX_MOVES["exact"]  # set by resolved()
    acceptance: Literal["exact", "delayed"] = "delayed" if settings.acceptance == "delayed" else "exact"
    while len(rates) < most:
        if len(rates) >= settings.min_moves and diversity >= wanted and remembered <= settings.final_correlation:
            break
        reason = target.affordable(population.latents.shape[0])
        if reason is not None:
            trace.stopped = reason
            break
        before, spent, blocked = population.latents.flatten(1).double(), target.evaluations, move.blocked
        population, accepted = ensemble_sweep(target, population, beta, move.current(), halves, random,
                                              acceptance=acceptance, residual_limit=settings.residual_limit)
        rates.append(float(accepted.double().mean()))
        jump = whitened_jump(before, population.latents.flatten(1).double(), target.evaluations - spent)
        move = move.after(rates[-1], jump, before.shape[1])
        blocks += blocked
        diversity = population_ess(population, ancestors, islands=islands)
        if final:
            remembered = correlation_with_start(start, population)
    trace.diversity.append(diversity)
    if len(rates) == most and diversity < 0.5 * count:  # not merely short of the wanted share
        trace.stuck.append(beta)
    trace.moves.append(len(rates))
    trace.acceptance.append(sum(rates) / len(rates) if rates else math.nan)
    trace.step_sizes.append(move.full.step)
    trace.blocks.append(move.block.block or population.latents[0].numel())
    trace.blocked.append(blocks / len(rates) if rates else 0.0)
    trace.correlation.append(correlation_with_start(start, population) if rates else 1.0)
    return population, move


def _ancestors(lineage: list[Tensor]) -> list[Tensor]:
    """Each final particle's ancestor 1, 2, ... resampling steps back (at most :data:`LAGS`)."""
    families: list[Tensor] = []
    for parents in reversed(lineage[-LAGS:]):
        families.append(parents if not families else parents[families[-1]])
    return families


def resolved(settings: SMCSettings, spread: float) -> SMCSettings:
    """``settings`` with ``acceptance="auto"`` and ``max_moves=None`` decided for a tilt ``spread`` (nats)."""
    acceptance = settings.acceptance if settings.acceptance != "auto" else \
        "delayed" if spread < DELAYED_SPREAD else "exact"
    max_moves = settings.max_moves if settings.max_moves is not None else \
        max(MAX_MOVES[acceptance], settings.min_moves, 1)
    return replace(settings, acceptance=acceptance, max_moves=max_moves)


def tilt_spread(target: TemperedTarget, log_volumes: Tensor) -> float:
    """Standard deviation of ``rho * log_volume`` over the finite values (0 with fewer than two)."""
    values = target.tilt(1.0, log_volumes)
    values = values[torch.isfinite(values)]
    return float(values.std()) if values.numel() > 1 else 0.0


def island_labels(count: int, islands: int) -> Tensor:
    """``(count,)`` int64: particle ``i`` is in island ``i % islands``."""
    return torch.arange(count) % max(islands, 1)


def population_ess(population: Particles, ancestors: list[Tensor], keep: Tensor | None = None,
                   islands: int = 1) -> float:
    """ESS of the population, or of its rows ``keep``: the smaller of its genealogy ESS and, with several
    ``islands``, the ESS from the spread of the islands' means."""
    values = statistics(population.latents, population.log_volumes)
    labels = island_labels(values.shape[0], islands)
    if keep is not None:
        keep = keep.cpu()
        values, ancestors, labels = values[keep], [family[keep] for family in ancestors], labels[keep]
    ess = genealogy_ess(values, ancestors)
    return min(ess, island_ess(values, labels)) if islands > 1 else ess


def _next_temperature(target: TemperedTarget, log_volumes: Tensor, beta: float, ess_threshold: float,
                      members: list[Tensor]) -> tuple[float, Tensor]:
    """The largest ``beta' <= 1`` whose incremental weights keep ``ESS >= ess_threshold`` of the particles that
    carry weight, the ESS summed over the islands (``members``: each island's particle indices), each island's
    weights normalised on their own; and those incremental log weights."""
    finite = torch.isfinite(log_volumes)
    members = [rows.to(log_volumes.device) for rows in members]
    wanted = ess_threshold * int(finite.sum())

    def enough(weights: Tensor) -> bool:
        return sum(effective_sample_size(weights[rows]) for rows in members) >= wanted

    def increments(delta: float) -> Tensor:  # delta > 0: 1 - beta, a bisection midpoint, or at least 1e-12
        return target.tilt(delta, log_volumes).masked_fill(~finite, -math.inf)

    if enough(increments(1.0 - beta)):
        return 1.0, increments(1.0 - beta)
    low, high = 0.0, 1.0 - beta
    for _ in range(60):
        middle = (low + high) / 2
        if enough(increments(middle)):
            low = middle
        else:
            high = middle
    delta = max(low, 1e-12)
    return beta + delta, increments(delta)
