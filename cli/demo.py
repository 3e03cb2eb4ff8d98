"""``make demo``: debias the built-in ramp generator in-process and print what changed.

The ramp ``G(z) = (z1, z2, a * relu(z1 - c))`` stretches the half of latent space past the kink, so naive uniform
latents under-sample the ramp's surface. Reweighting by ``exp(log_volume)`` (target ``uniform``, ``rho = 1``) and
resampling recovers the exact area share, which the ramp knows in closed form.
"""

from __future__ import annotations

import argparse

import torch

from gendebias.generators import Ramp
from gendebias.geometry import (
    effective_sample_size,
    log_volume,
    log_weights,
    max_weight,
    resample,
    tile_codes,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=100_000, help="uniform latents drawn from the box [-1, 1]^2")
    parser.add_argument("--n", type=int, default=10_000, help="debiased latents to resample from the pool")
    parser.add_argument("--seed", type=int, default=0, help="seed for the pool and the resampling")
    args = parser.parse_args(argv)

    ramp = Ramp(slope=3.0, kink=0.0)
    pool = torch.rand(args.pool, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(args.seed)) * 2 - 1
    volumes = log_volume(ramp, pool)
    weights = log_weights(volumes, rho=1.0, target="uniform")
    drawn = pool[resample(weights, args.n, scheme="multinomial", seed=args.seed)]

    def on_ramp(latents: torch.Tensor) -> float:
        return float((latents[:, 0] > ramp.kink).double().mean())

    print(f"generator       ramp G(z) = (z1, z2, {ramp.slope} * relu(z1 - {ramp.kink})), latents uniform on [-1, 1]^2")
    print(f"tiles in pool   {torch.unique(tile_codes(ramp, pool)).numel()}")
    print(f"log-volumes     {sorted(set(round(v, 6) for v in volumes.tolist()))} "
          f"(exact: 0 and {ramp.ramp_log_volume():.6f})")
    print(f"weights         ESS {effective_sample_size(weights):,.0f} of {args.pool:,}, "
          f"max weight {max_weight(weights):.2e}")
    print(f"share on ramp   naive {on_ramp(pool[: args.n]):.4f}   debiased {on_ramp(drawn):.4f}   "
          f"exact area share {ramp.ramp_area_share():.4f}")


if __name__ == "__main__":
    main()
