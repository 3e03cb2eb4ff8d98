"""Cost per effective sample of SIR, SMC and MCMC: ``python benchmarks/samplers.py [--runs R]``, JSON rows.

For each generator and sampler, ``runs`` independent seeded runs draw ``n`` latents. Each row reports the
log-volume evaluations per run, the ESS the sampler reports (SIR: Kish ESS of the pool weights; SMC: ESS of the
last tempering step's weights; MCMC: autocorrelation ESS of the log-volume trace), distinct latents, seconds, and
``evaluations / ESS``. On ``hinge-64`` (exact answer known) it also reports the *measured* ESS of the statistic
"share of positive coordinates": its i.i.d. variance divided by the variance of the runs' estimates, which is
what a user actually gets, whatever the sampler claims.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from gendebias.generators import Generator, load_generator
from gendebias.geometry import sample


class Hinge(nn.Module):
    """``(z, a * relu(z))`` on ``R^64``: independent coordinates under the tilted target, known marginals."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("slopes", torch.linspace(1.0, 3.0, 64, dtype=torch.float64))

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return torch.cat([latents, self.slopes * torch.relu(latents)], dim=1)


def rows(name: str, generator: Generator, n: int, runs: int, exact: float | None, budget: int | None):
    settings = {"smc": {}, "mcmc": {"chains": 32, "burn_in": 100, "thin": 2}}
    results = {}
    for sampler in ("smc", "mcmc", "sir"):
        extra = dict(settings.get(sampler, {}))
        if sampler == "sir":
            extra["proposals"] = budget or 10 * n  # the same evaluations SMC spent
        started = time.perf_counter()
        draws = [sample(generator, n, sampler=sampler, seed=seed, **extra) for seed in range(runs)]
        seconds = (time.perf_counter() - started) / runs
        evaluations = statistics.mean(d.evaluations for d in draws)
        reported = statistics.mean(d.ess for d in draws)
        row = {"generator": name, "sampler": sampler, "n": n, "runs": runs, "evaluations": round(evaluations),
               "reported_ess": round(reported, 1), "evaluations_per_reported_ess": round(evaluations / reported, 1),
               "distinct": round(statistics.mean(d.distinct for d in draws)), "seconds_per_run": round(seconds, 2),
               "device": "cpu"}
        if exact is not None and runs > 1:
            estimates = [float((d.latents > 0).double().mean()) for d in draws]
            iid_variance = exact * (1 - exact) / draws[0].latents[0].numel()
            spread = statistics.variance(estimates)
            row["bias"] = round(statistics.mean(estimates) - exact, 4)
            row["measured_ess"] = round(iid_variance / spread, 1)
            row["evaluations_per_measured_ess"] = round(evaluations / (iid_variance / spread), 1)
        results[sampler] = row
        if sampler == "smc":
            budget = budget or round(evaluations)
        print(json.dumps(row), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--n", type=int, default=250)
    args = parser.parse_args()
    torch.set_num_threads(2)
    hinge = Generator(Hinge(), latent_shape=(64,), dtype=torch.float64)
    stretch = torch.sqrt(1 + hinge.module.slopes**2)
    rows("hinge-64", hinge, args.n, args.runs, float((stretch / (1 + stretch)).mean()), None)
    rows("digits-gan", load_generator("digits-gan"), args.n, args.runs, None, None)


if __name__ == "__main__":
    main()
