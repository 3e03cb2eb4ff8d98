"""Independent Metropolis–Hastings chains on the debiasing target, for a stream of samples.

``chains`` chains start from the base (prior, or uniform on the region) and move with gpCN steps, each half of the
chains around a Gaussian fitted to the other half's current states (:func:`~gendebias.geometry.kernels.ensemble_sweep`:
a reference fitted to the chains it moves would bias them, and one shared by all would correlate them). The step
size adapts during ``burn_in`` sweeps only, so the kept states come from one fixed rule.
Every ``thin``-th state is kept. The effective sample size is the multi-chain autocorrelation estimate over the
latent coordinates and the log-volume (:func:`gendebias.geometry.ess.multichain_ess`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from gendebias.geometry.ess import multichain_ess, statistics
from gendebias.geometry.kernels import Particles, TemperedTarget, ensemble_sweep
from gendebias.geometry.progress import Progress
from gendebias.geometry.proposals import initial_choice, whitened_jump


@dataclass(frozen=True)
class MCMCSettings:
    """``chains`` (default ``min(n, 32)``), adaptation sweeps ``burn_in``, and ``thin``."""

    chains: int | None = None
    burn_in: int = 100
    thin: int = 2


@dataclass
class MCMCTrace:
    """``acceptance`` after burn-in (burn-in's if it never got there), the ``step_size`` and ``block``
    (coordinates moved per proposal) of the move chosen in burn-in and kept after it, ``chains`` and the states
    ``kept_per_chain``."""

    acceptance: float
    step_size: float
    chains: int
    kept_per_chain: int
    stopped: str = "done"
    block: int = 0


def mcmc(target: TemperedTarget, settings: MCMCSettings, n: int, chains: int, *, random: torch.Generator,
         progress: Callable[[Progress], None] | None = None) -> tuple[Tensor, float, MCMCTrace]:
    """``n`` latents (fewer if the budget stops it) from ``chains`` chains, time-major; their ESS; the trace."""
    seed = int(torch.randint(0, 2**62, (1,), generator=random))
    latents = target.generator.sample_latents(chains, seed=seed)
    state = Particles(latents, target.log_volumes(latents), target.log_base(latents))
    move, stopped = initial_choice(latents), "done"
    halves = torch.arange(chains) % 2 == 0
    warmup: list[float] = []
    for _ in range(settings.burn_in):
        if (stopped := target.affordable(chains) or "done") != "done":
            break
        before, spent = state.latents.flatten(1).double(), target.evaluations
        state, accepted = ensemble_sweep(target, state, 1.0, move.current(), halves, random)
        warmup.append(float(accepted.double().mean()))
        jump = whitened_jump(before, state.latents.flatten(1).double(), target.evaluations - spent)
        move = move.after(warmup[-1], jump, before.shape[1])
    kept: list[Particles] = []
    rates: list[float] = []
    per_chain = math.ceil(n / chains)
    while stopped == "done" and len(kept) < per_chain:
        for _ in range(settings.thin):
            if (stopped := target.affordable(chains) or "done") != "done":
                break
            state, accepted = ensemble_sweep(target, state, 1.0, move.current(), halves, random)
            rates.append(float(accepted.double().mean()))
        if stopped == "done":
            kept.append(state)
            if progress is not None:
                progress(Progress("mcmc", 1.0, target.evaluations, len(kept), math.nan))
    samples = torch.stack([k.latents for k in kept]).flatten(0, 1)[:n] if kept else latents[:0]
    traces = torch.stack([statistics(k.latents, k.log_volumes) for k in kept]) if kept else None
    ess = 0.0 if traces is None else multichain_ess(traces) * samples.shape[0] / (len(kept) * chains)
    rates = rates or warmup  # stopped during burn-in: report the burn-in acceptance rather than nothing
    kept_move = move.current()
    trace = MCMCTrace(sum(rates) / len(rates) if rates else math.nan, kept_move.step, chains, len(kept), stopped,
                      kept_move.block or latents[0].numel())
    return samples, ess, trace
