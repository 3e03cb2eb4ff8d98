"""``sample``: the one entry point that draws debiased latents (DESIGN.md §3), for the service, jobs and CLI.

* ``sir`` — sampling-importance-resampling: weight a pool of prior proposals by ``exp(rho * log_volume)`` and
  resample it. Cheap and exact as the pool grows, but it collapses on real generators whose log-volumes spread
  over tens of nats (ESS of a few latents); the result always reports ESS, the largest weight and the number of
  distinct latents, so the collapse is visible.
* ``smc`` — adaptive-tempering sequential Monte Carlo (:mod:`gendebias.geometry.smc`): correct for the target and
  diverse, at a cost of ``particles * (1 + moves * steps)`` log-volume evaluations, reported.
* ``mcmc`` — independent Metropolis–Hastings chains (:mod:`gendebias.geometry.mcmc`) for a stream of samples,
  with an autocorrelation-based ESS.

The generator must carry a prior (``sample_latents``, ``log_prior``, ``prior``), as every ``Generator`` does.
Every random choice flows from ``seed``; the same seed on the same device gives the same latents.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from gendebias.errors import LimitExceededError
from gendebias.geometry._inputs import check_choice
from gendebias.geometry.kernels import TemperedTarget
from gendebias.geometry.mcmc import mcmc
from gendebias.geometry.resample import Scheme, rejection_sample, resample
from gendebias.geometry.smc import smc
from gendebias.geometry.weights import effective_sample_size, log_weights, max_weight

Sampler = Literal["sir", "smc", "mcmc"]
SAMPLERS = ("sir", "smc", "mcmc")


@dataclass(frozen=True)
class SampleResult:
    """Debiased latents and what it took.

    ``latents`` ``(n, *latent_shape)`` (fewer when a budget stopped the sampler); ``log_weights`` of the drawn
    latents in the pool (SIR only); ``ess``: Kish ESS of the pool weights (SIR), of the last tempering step's
    incremental weights (SMC), or from autocorrelation (MCMC); ``distinct``: distinct latents returned;
    ``evaluations``: log-volume evaluations spent; ``diagnostics``: the sampler's trace (tempering schedule,
    acceptance rates, ESS per step, log normalising constant, the reason it stopped, ...).
    """

    latents: Tensor
    log_weights: Tensor | None
    ess: float
    max_weight: float | None
    distinct: int
    evaluations: int
    sampler: str
    seed: int
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def cost_per_effective_sample(self) -> float:
        return self.evaluations / self.ess if self.ess > 0 else math.inf


def sample(generator: Any, n: int, *, rho: float = 1.0, target: Literal["tilted", "uniform"] = "tilted",
           top_k: int | None = None, sampler: Sampler = "sir", seed: int | None = None,
           max_evaluations: int | None = None, deadline: float | None = None, proposals: int | None = None,
           scheme: Scheme = "multinomial", particles: int | None = None, jumps: float = 6.0,
           ess_threshold: float = 0.5, chains: int | None = None, burn_in: int = 100, thin: int = 2,
           chunk_size: int | None = None) -> SampleResult:
    """Draw ``n`` debiased latents from ``generator`` for ``target`` with exponent ``rho``.

    Args:
        sampler: ``"sir"``, ``"smc"`` or ``"mcmc"``.
        max_evaluations: budget of log-volume evaluations; ``deadline``: seconds from now. Either stops SMC/MCMC
            cleanly, with ``diagnostics["stopped"]`` saying why; SIR refuses a pool larger than the budget.
        proposals, scheme: SIR's pool size (default ``10 n``) and resampling scheme.
        particles, jumps, ess_threshold: SMC's population (default ``n``), accepted MH moves per particle after
            each resampling (on average), and the ESS share each tempering step keeps.
        chains, burn_in, thin: MCMC's chains (default ``min(n, 32)``), adaptation sweeps and thinning.
    """
    check_choice("sampler", sampler, SAMPLERS)
    check_choice("target", target, ("tilted", "uniform"))
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)))
    random = torch.Generator().manual_seed(seed)
    stop_at = None if deadline is None else time.monotonic() + deadline
    goal = TemperedTarget(generator, float(rho), target, top_k, max_evaluations, stop_at, chunk_size)
    if sampler == "sir":
        return _sir(goal, n, proposals or 10 * n, scheme, seed)
    if sampler == "smc":
        population, trace = smc(goal, particles or n, ess_threshold=ess_threshold, jumps=jumps, random=random)
        latents = population.latents[:n]
        diagnostics = {"schedule": trace.schedule, "ess_history": trace.ess, "acceptance": trace.acceptance,
                       "step_sizes": trace.step_sizes, "moves": trace.moves, "log_normalizer": trace.log_normalizer,
                       "beta": trace.schedule[-1] if trace.schedule else 0.0, "stopped": trace.stopped,
                       "particles": particles or n}
        ess = trace.ess[-1] if trace.ess else 0.0
        return SampleResult(latents, None, ess, None, _distinct(latents), goal.evaluations, sampler, seed,
                            diagnostics)
    latents, chain_trace = mcmc(goal, n, chains=chains or min(n, 32), burn_in=burn_in, thin=thin, random=random)
    diagnostics = {"acceptance": chain_trace.acceptance, "autocorrelation_ess": chain_trace.autocorrelation_ess,
                   "step_size": chain_trace.step_size, "chains": chain_trace.chains,
                   "kept_per_chain": chain_trace.kept_per_chain, "stopped": chain_trace.stopped}
    return SampleResult(latents, None, chain_trace.autocorrelation_ess, None, _distinct(latents), goal.evaluations,
                        sampler, seed, diagnostics)


def _sir(goal: TemperedTarget, n: int, proposals: int, scheme: Scheme, seed: int) -> SampleResult:
    reason = goal.affordable(proposals)
    if reason == "max_evaluations":
        raise LimitExceededError(f"SIR needs {proposals} log-volume evaluations for its pool, over the budget of "
                                 f"{goal.max_evaluations}; lower proposals or raise max_evaluations",
                                 field="max_evaluations")
    pool = goal.generator.sample_latents(proposals, seed=seed)
    log_proposal = goal.generator.log_prior(pool) if goal.target == "uniform" else None
    return resample_pool(pool, goal.log_volumes(pool), n, rho=goal.rho, target=goal.target,
                         log_proposal=log_proposal, scheme=scheme, seed=seed)


def resample_pool(pool: Tensor, log_volumes: Tensor, n: int, *, rho: float, target: Literal["tilted", "uniform"],
                  log_proposal: Tensor | None, scheme: Scheme, seed: int) -> SampleResult:
    """SIR's second half, for callers that computed the pool's log-volumes themselves (the service batches them):
    weight ``pool`` ``(N, ...)`` for the target and draw ``n`` latents by ``scheme``. ``diagnostics["indices"]``
    holds the drawn pool indices (on the pool's device)."""
    weights = log_weights(log_volumes, rho=rho, target=target, log_proposal=log_proposal)
    diagnostics: dict[str, Any] = {"proposals": pool.shape[0], "scheme": scheme, "stopped": "done",
                                   "acceptance_rate": math.nan}
    if scheme == "rejection":
        rejection = rejection_sample(weights, n, seed=seed)
        indices = rejection.indices
        diagnostics["acceptance_rate"] = rejection.acceptance_rate
    else:
        indices = resample(weights, n, scheme=scheme, seed=seed)
    indices = indices.to(pool.device)
    diagnostics["indices"] = indices
    return SampleResult(pool[indices], weights[indices.cpu()], effective_sample_size(weights), max_weight(weights),
                        int(torch.unique(indices).shape[0]), pool.shape[0], "sir", seed, diagnostics)


def _distinct(latents: Tensor) -> int:
    return int(torch.unique(latents.flatten(1), dim=0).shape[0]) if latents.shape[0] else 0
