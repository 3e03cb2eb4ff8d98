"""Independent Metropolis–Hastings chains on the debiasing target, for a stream of samples.

``chains`` chains start from the base (prior, or uniform on the region), adapt their step size during ``burn_in``
sweeps only, then keep every ``thin``-th state. The kernel is the one SMC uses (:mod:`gendebias.geometry.kernels`)
at ``beta = 1``. The effective sample size is estimated from the autocorrelation of each chain's log-volume trace
(Geyer's initial positive sequence), summed over chains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gendebias.geometry.kernels import (
    Particles,
    TemperedTarget,
    adapted_step,
    initial_step,
    metropolis_sweep,
)


@dataclass
class MCMCTrace:
    acceptance: float
    autocorrelation_ess: float
    step_size: float
    chains: int
    kept_per_chain: int
    stopped: str = "done"


def mcmc(target: TemperedTarget, n: int, *, chains: int, burn_in: int = 100, thin: int = 2,
         random: torch.Generator) -> tuple[Tensor, MCMCTrace]:
    """``n`` latents (fewer if the budget stops it) from ``chains`` chains, time-major, and the trace."""
    seed = int(torch.randint(0, 2**62, (1,), generator=random))
    latents = target.generator.sample_latents(chains, seed=seed)
    state = Particles(latents, target.log_volumes(latents), target.log_base(latents))
    step, stopped = initial_step(target, latents), "done"
    warmup: list[float] = []
    for _ in range(burn_in):
        if (stopped := target.affordable(chains) or "done") != "done":
            break
        state, accepted = metropolis_sweep(target, state, 1.0, step, random)
        warmup.append(float(accepted.double().mean()))
        step = adapted_step(target, step, warmup[-1])
    kept: list[Tensor] = []
    traces: list[Tensor] = []
    rates: list[float] = []
    per_chain = math.ceil(n / chains)
    while stopped == "done" and len(kept) < per_chain:
        for _ in range(thin):
            if (stopped := target.affordable(chains) or "done") != "done":
                break
            state, accepted = metropolis_sweep(target, state, 1.0, step, random)
            rates.append(float(accepted.double().mean()))
        if stopped == "done":
            kept.append(state.latents)
            traces.append(state.log_volumes)
    samples = torch.stack(kept).flatten(0, 1)[:n] if kept else latents[:0]
    ess = _autocorrelation_ess(torch.stack(traces)) if len(traces) > 2 else float(len(traces) * chains)
    rates = rates or warmup  # stopped during burn-in: report the burn-in acceptance rather than nothing
    trace = MCMCTrace(sum(rates) / len(rates) if rates else math.nan, ess, step, chains, len(kept), stopped)
    return samples, trace


def _autocorrelation_ess(traces: Tensor) -> float:
    """``sum over chains of T / tau`` with ``tau = 1 + 2 sum rho_k`` over Geyer's initial positive pair sums."""
    traces = traces.to(torch.float64)
    traces = torch.where(torch.isfinite(traces), traces, torch.nan)
    total = 0.0
    for chain in traces.T:
        chain = chain[torch.isfinite(chain)]
        length = chain.shape[0]
        centred = chain - chain.mean()
        variance = float((centred**2).mean())
        if length < 3 or variance == 0:
            total += float(length)
            continue
        spectrum = torch.fft.rfft(centred, n=2 * length)
        autocorrelation = torch.fft.irfft(spectrum * spectrum.conj(), n=2 * length)[:length] / (length * variance)
        tau = -1.0
        for k in range(0, length - 1, 2):
            pair = float(autocorrelation[k] + autocorrelation[k + 1])
            if pair <= 0:
                break
            tau += 2 * pair
        total += length / max(tau, 1.0)
    return total
