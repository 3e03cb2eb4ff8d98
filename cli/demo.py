"""``make demo``: serve the built-in zoo, debias ``digits-gan`` through the SDK, and show what changed.

The story in three steps:

1. **The maths on a toy with a known answer.** The ramp ``(z1, z2, 3 relu(z1))`` on ``[-1, 1]^2`` has an exact
   area share on its sloped half, ``sqrt(10) / (sqrt(10) + 1) = 0.760``; naive latents put half the outputs there,
   area-uniform weights (``rho = 1``, target ``uniform``) the exact share, within the printed standard error.
2. **digits-gan through the service.** A real gRPC server on a free local port is asked through
   :class:`gendebias.clients.Client` for naive samples (``rho = 0``), MaGNET samples (``rho = 1``, target ``tilted``,
   the published target) and ``balanced`` samples (every class the same mass, volume-uniform inside each class),
   each drawn by the default ``auto`` sampler, which measures a pilot and says what it picked.
3. **What changed**, measured: the class KL to uniform under the zoo's conv-net classifier and, where scikit-learn
   is installed, under a logistic regression that takes no part in the weighting; the ESS and the distinct count.
   One labelled figure, ``demo/before_after.png``: the three sample grids at their true aspect ratio (titled with
   method, rho, ESS and distinct count) and the class histograms with the uniform line.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gendebias.clients import Client
from gendebias.clients.results import Resampled
from gendebias.evaluation.pictures import Panel, before_after, panel_title
from gendebias.generators import Ramp
from gendebias.generators.zoo.evaluation import class_histogram, kl_to_uniform
from gendebias.generators.zoo.models import load_pretrained
from gendebias.geometry import effective_sample_size, log_volume, log_weights, resample
from gendebias.service.testing import running_server

Labeller = Callable[[Tensor], Tensor]
CALL_SECONDS = 600.0
"""Deadline of each call: generous, so that a busy machine makes the demo slower rather than its samples wrong (the
server stops a sampler at 80% of the deadline and says so)."""


def ramp_check(seed: int) -> None:
    """Print the ramp's share of naive and area-uniform draws against the exact area share."""
    ramp = Ramp(slope=3.0, kink=0.0)
    pool = torch.rand(100_000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    weights = log_weights(log_volume(ramp, pool), rho=1.0, target="uniform")
    draws = 10_000
    share = float((pool[resample(weights, draws, seed=seed)][:, 0] > 0).double().mean())
    naive = float((pool[:draws, 0] > 0).double().mean())
    exact = ramp.ramp_area_share()
    error = math.sqrt(exact * (1 - exact) * (1 / draws + 1 / effective_sample_size(weights)))
    print("1. ramp toy     exact area share of the sloped half: "
          f"{exact:.3f} = sqrt(10) / (sqrt(10) + 1)")
    print(f"               naive {naive:.3f} (latent share 0.5), area-uniform (rho = 1) {share:.3f} "
          f"± {error:.3f} (SE): {abs(share - exact) / error:.1f} SE from exact")


def held_out_labeller() -> Labeller | None:
    """Labels from a logistic regression on scikit-learn's digits, a member of no weighting classifier; None
    without scikit-learn."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        return None
    digits = load_digits()
    model = LogisticRegression(max_iter=2000).fit(digits.images.reshape(-1, 64) / 8.0 - 1.0, digits.target)
    return lambda images: torch.from_numpy(model.predict(images.reshape(images.shape[0], -1).double().numpy()))


def draw(client: Client, generator_id: str, n: int, seed: int) -> dict[str, tuple[float, Resampled]]:
    """``{method: (rho, result)}`` for naive, MaGNET and balanced samples, each printed as it arrives."""
    requests: list[tuple[str, float, dict[str, Any]]] = [
        ("naive", 0.0, {"proposals": n, "scheme": "without_replacement", "sampler": "sir"}),
        ("MaGNET (tilted)", 1.0, {}),
        ("balanced", 1.0, {"target": "balanced"}),
    ]
    results = {}
    for method, rho, options in requests:
        started = time.perf_counter()
        result = client.resample(generator_id, n, rho=rho, seed=seed, return_outputs=True, **options)
        results[method] = (rho, result)
        print(f"               {method:<17} {time.perf_counter() - started:5.1f} s, {result.evaluations:,} log-volume "
              f"evaluations, {result.sampler}: {result.choice[:90]}")
    return results


def report(results: dict[str, tuple[float, Resampled]], conv_net: torch.nn.Module, held_out: Labeller | None,
           n: int) -> list[Panel]:
    """Print the metrics table and return one titled panel per method."""
    print(f"3. what changed {'method':<17} {'ESS':>6} {'distinct':>8}   class KL to uniform (nats): noise floor "
          "(K - 1) / (2 ESS), conv net" + (", held-out logistic regression" if held_out else ""))
    panels = []
    for method, (rho, result) in results.items():
        images = torch.from_numpy(result.outputs)
        histogram = class_histogram(images, conv_net)
        kl = kl_to_uniform(histogram)
        line = f"{9 / (2 * result.ess):.3f}, {kl:.3f}"
        if held_out is not None:
            line += f", {kl_to_uniform(torch.bincount(held_out(images), minlength=10)):.3f}"
        print(f"               {method:<17} {result.ess:6.0f} {result.distinct:8,}   {line}")
        title = panel_title(method, rho=rho, ess=result.ess, distinct=result.distinct, count=n,
                            details=f"class KL {kl:.3f}")
        panels.append(Panel(title, images, histogram))
    return panels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--generator", default="digits-gan", help="built-in generator id")
    parser.add_argument("--n", type=int, default=250,
                        help="latents to draw per method (250 keeps the demo under 2 minutes on 2 cores)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the pools and the samplers")
    parser.add_argument("--out", type=Path, default=Path("demo"), help="folder for before_after.png")
    args = parser.parse_args(argv)

    ramp_check(args.seed)
    conv_net = load_pretrained("classifier")
    held_out = held_out_labeller()
    with running_server() as target, Client(target, timeout=CALL_SECONDS) as client:
        info = client.get_generator(args.generator)
        print(f"2. {info.generator_id:<12} served at {target} (health {client.health()}): latents "
              f"{info.latent_shape} -> outputs {info.output_shape}, piecewise affine {info.piecewise_affine}")
        results = draw(client, args.generator, args.n, args.seed)
    panels = report(results, conv_net, held_out, args.n)
    picture = before_after(panels, args.out / "before_after.png", classes=[str(d) for d in range(10)],
                           suptitle=f"{info.generator_id}: first 64 of {args.n:,} samples per method (8x8 digits at "
                                    "their true aspect ratio); classes by the zoo's conv-net classifier")
    print(f"picture         {picture} (grids: naive, MaGNET, balanced; right: class histograms)")


if __name__ == "__main__":
    main()
