"""Cost per *measured* effective sample of each sampler: ``python benchmarks/samplers.py [--runs R] [--n N]``.

Cases with exact answers: the hinge ``G(z) = (z, a relu(z))`` with an analytic log-volume ``sum_j gain [z_j > 0]``
(``gain = log sqrt(1 + a^2)``), ``N(0, I)`` prior, tilted target, ``rho = 1``: each coordinate is positive with
probability ``c / (1 + c)``, ``c = exp(gain)``. ``hinge-64`` is ``a = 3`` in 64 dimensions (log-volume std 4.6
nats); ``hinge-256`` has ``gain = 2.5`` in 256 dimensions (std 20 nats, a real GAN's spread).

For each sampler, ``runs`` seeded runs draw ``n`` latents. Statistic: the share of positive coordinates. Each JSON
row reports its bias and ``bias / SE`` over the runs, the *measured* ESS (the variance one exact latent's share
would have, divided by the variance of the runs' estimates: what a user actually gets), the mean ESS the sampler
*reports*, their ratio, evaluations, evaluations per measured ESS, distinct latents and seconds per run.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch
from torch import nn

from gendebias.generators import Generator
from gendebias.geometry import SIRSettings, SMCSettings, sample


class Hinge(nn.Module):
    """``(z, relu(z))``; the log-volume is supplied analytically (see the module docstring)."""

    def __init__(self, dimension: int, gain: float) -> None:
        super().__init__()
        self.gains = torch.full((dimension,), gain, dtype=torch.float64)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return torch.cat([latents, torch.relu(latents)], dim=1)

    def log_volumes(self, latents: torch.Tensor) -> torch.Tensor:
        return (latents > 0).double() @ self.gains

    def positive_share(self) -> float:
        stretch = torch.exp(self.gains)
        return float((stretch / (1 + stretch)).mean())


def row(name: str, hinge: Hinge, sampler: str, n: int, runs: int, extra: dict[str, object]) -> dict[str, object]:
    generator = Generator(hinge, latent_shape=(hinge.gains.shape[0],), dtype=torch.float64)
    started = time.perf_counter()
    draws = [sample(generator, n, sampler=sampler, seed=seed, log_volume_function=hinge.log_volumes, **extra)
             for seed in range(runs)]
    seconds = (time.perf_counter() - started) / runs
    exact = hinge.positive_share()
    shares = [float((d.latents > 0).double().mean()) for d in draws]
    spread = statistics.variance(shares)
    measured = exact * (1 - exact) / hinge.gains.shape[0] / spread
    reported = statistics.mean(d.ess for d in draws)
    evaluations = statistics.mean(d.evaluations for d in draws)
    bias = statistics.mean(shares) - exact
    settings = extra.get("settings", SMCSettings())
    acceptance = getattr(settings, "acceptance", "") if sampler in ("auto", "smc") else ""
    return {"generator": name, "sampler": sampler, "acceptance": acceptance, "ran": draws[0].sampler, "n": n,
            "runs": runs,
            "bias": round(bias, 4), "bias_over_se": round(bias / math.sqrt(spread / runs), 1),
            "measured_ess": round(measured, 1), "reported_ess": round(reported, 1),
            "reported_over_measured": round(reported / measured, 2), "evaluations": round(evaluations),
            "evaluations_per_measured_ess": round(evaluations / measured, 1),
            "distinct": min(d.distinct for d in draws), "seconds_per_run": round(seconds, 2), "device": "cpu"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--cases", default="hinge-64,hinge-256")
    parser.add_argument("--samplers", default="auto,smc,mcmc,sir")
    parser.add_argument("--acceptance", choices=("exact", "delayed"), default=None,
                        help="SMC's move acceptance (default: SMCSettings')")
    parser.add_argument("--residual-limit", type=float, default=None,
                        help="SMCSettings.residual_limit for delayed acceptance (default: SMCSettings')")
    parser.add_argument("--max-moves", type=int, default=None, help="SMCSettings.max_moves (default: SMCSettings')")
    parser.add_argument("--smc", default="{}", help='other SMCSettings fields as JSON, e.g. \'{"ess_threshold": 0.3}\'')
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = {"hinge-64": Hinge(64, 0.5 * math.log(10.0)), "hinge-256": Hinge(256, 2.5)}
    changed = {key: value for key, value in (("acceptance", args.acceptance),
                                             ("residual_limit", args.residual_limit),
                                             ("max_moves", args.max_moves)) if value is not None}
    changed.update(json.loads(args.smc))
    smc_settings = {"settings": SMCSettings(**changed)} if changed else {}
    samplers: list[tuple[str, dict[str, object]]] = [
        ("auto", smc_settings), ("smc", smc_settings), ("mcmc", {}),
        ("sir", {"settings": SIRSettings(proposals=10 * args.n)})]
    wanted = args.samplers.split(",")
    for name in args.cases.split(","):
        for sampler, extra in samplers:
            if sampler not in wanted:
                continue
            if name == "hinge-256" and sampler in ("mcmc", "sir"):
                continue  # both collapse there (measured ESS of a few latents); auto and smc are the question
            print(json.dumps(row(name, cases[name], sampler, args.n, args.runs, extra)), flush=True)


if __name__ == "__main__":
    main()
