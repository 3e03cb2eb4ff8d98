"""Cost and accuracy of the two routes of the exact log-volume: ``python benchmarks/volume_routes.py
[--latents N] [--repeats R] [--out FILE]``, one JSON object per line on stdout (and in ``FILE``).

For each generator, in one process, on the same latents:

* ``kappa``: ``sigma_1 / sigma_d`` of each latent's float32 Jacobian (min / median / max), and the share of latents
  the ``auto`` rule (:func:`~gendebias.geometry.volume.gram_condition_limit`) sends to the Gram route;
* ``reduce_*``: latents/s of :func:`~gendebias.geometry.volume.log_volume_from_jacobians` alone on precomputed
  Jacobians, forced to ``route="gram"`` / ``"svd"`` and ``"auto"`` (best of ``R`` interleaved runs);
* ``end_to_end_*``: latents/s of the whole exact log-volume (Jacobian-vector products + reduction, planned and
  chunked as ``log_volume`` does) under each route, best of ``R`` interleaved runs;
* ``gram_vs_svd_nats``: max ``|gram - svd|`` over the latents, the Gram route's own error.

Before them, an error sweep (``"row": "sweep"``) checks the error model of ``docs/geometry.md``: float64
Jacobians ``(2000, 100)`` with geometric spectra at ``kappa`` = 1e1 ... 1e7 are rounded to float32; ``storage_nats``
is what that rounding alone moves the log-volume (the least error a float32 Jacobian carries),
``gram_vs_svd_nats`` the Gram route's error on the float32 ``J``, ``route`` the one ``auto`` takes.

Generators: ``synthetic-mlp`` (no network: ``(784, 100)`` float32 Jacobians with singular values spread
geometrically over ``kappa = 3e3``, the shape and conditioning of a d = 100 MLP GAN on 28 x 28 images; reduction
rows only), ``digits-gan`` (zoo, d = 16), ``dcgan64`` (random weights, :mod:`benchmarks.models`) and ``face-dcgan64``
(the trained DCGAN of the ``gan_face_generate`` wheel through ``tests/generators/data/face-dcgan64.toml``;
skipped unless ``make third-party`` installed it). The DCGANs run on ``--latents`` latents (default 16), their
end-to-end rows on the first ``--end-to-end-latents`` (default 4: on CPU a DCGAN-64 latent costs seconds);
``synthetic-mlp`` and ``digits-gan`` on 256.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gendebias.generators import Generator, load_generator
from gendebias.geometry.jacobian import jacobian, map_jacobians
from gendebias.geometry.volume import _reduce_bytes, gram_condition_limit, log_volume_from_jacobians

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import dcgan64

HERE = Path(__file__).resolve().parent
ROUTES = ("gram", "svd", "auto")
FACE_SPEC = HERE.parent / "tests" / "generators" / "data" / "face-dcgan64.toml"


def synthetic_jacobians(count: int, *, rows: int = 784, latent_dim: int = 100, kappa: float = 3e3,
                        seed: int = 0) -> tuple[Tensor, Tensor]:
    """``(count, rows, latent_dim)`` float64 Jacobians with random singular vectors and ``sigma`` from 1 to
    ``1 / kappa``, and their exact log-volume."""
    generator = torch.Generator().manual_seed(seed)
    sigma = torch.logspace(0, -math.log10(kappa), latent_dim, dtype=torch.float64)
    blocks = []
    for _ in range(count):
        left, _ = torch.linalg.qr(torch.randn(rows, latent_dim, dtype=torch.float64, generator=generator))
        right, _ = torch.linalg.qr(torch.randn(latent_dim, latent_dim, dtype=torch.float64, generator=generator))
        blocks.append((left * sigma) @ right.T)
    return torch.stack(blocks), sigma.log().sum()


def error_sweep(kappas: tuple[float, ...] = (1e1, 1e2, 1e3, 3e3, 1e4, 3e4, 1e5, 1e6, 1e7),
                count: int = 3) -> list[dict[str, Any]]:
    """The error model's check (module docstring): worst of ``count`` float32 Jacobians per ``kappa``."""
    rows = []
    for kappa in kappas:
        exact, truth = synthetic_jacobians(count, rows=2000, kappa=kappa, seed=1)
        matrix = exact.float()
        values = {route: log_volume_from_jacobians(matrix, route=route) for route in ROUTES}
        finite_svd = torch.linalg.svdvals(matrix.double()).log().sum(dim=-1)  # the SVD before its rank test
        auto_gram = all(torch.equal(values["auto"][i], values["gram"][i]) for i in range(count))
        rows.append({"row": "sweep", "kappa": kappa, "latent_dim": matrix.shape[-1], "output_dim": matrix.shape[1],
                     "storage_nats": float((finite_svd - truth).abs().max()),
                     "gram_vs_svd_nats": float((values["gram"] - finite_svd).abs().max()),
                     "gram_model_nats": matrix.shape[-1] * torch.finfo(torch.float64).eps * kappa**2,
                     "jacobian_model_nats": matrix.shape[-1] * torch.finfo(torch.float32).eps * kappa,
                     "route": "gram" if auto_gram else "svd",
                     "auto_is_minus_inf": bool(torch.isneginf(values["auto"]).all())})
    return rows


def best_rates(calls: Mapping[str, Callable[[], Any]], count: int, repeats: int,
               warmups: Mapping[str, Callable[[], Any]] | None = None) -> dict[str, float]:
    """Latents/s of each call, best of ``repeats`` runs taken in turns (so load on the machine hits all alike),
    after one run of its warm-up (default: the call itself)."""
    best = dict.fromkeys(calls, math.inf)
    for name in calls:
        (warmups or calls)[name]()
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: count / seconds for name, seconds in best.items()}


def measure(name: str, jacobians: Tensor, *, generator: Generator | None, latents: Tensor | None,
            repeats: int) -> dict[str, Any]:
    count, _, latent_dim = jacobians.shape
    sigma = torch.linalg.svdvals(jacobians.double())
    kappa = (sigma[:, 0] / sigma[:, -1]).tolist()
    values = {route: log_volume_from_jacobians(jacobians, route=route) for route in ROUTES}
    row: dict[str, Any] = {
        "row": "routes", "generator": name, "latents": count, "latent_dim": latent_dim,
        "output_dim": jacobians.shape[1],
        "kappa_min": min(kappa), "kappa_median": statistics.median(kappa), "kappa_max": max(kappa),
        "gram_condition_limit": gram_condition_limit(latent_dim, jacobians.dtype),
        "auto_gram_share": sum(torch.equal(values["auto"][i], values["gram"][i]) for i in range(count)) / count,
        "gram_vs_svd_nats": float((values["gram"] - values["svd"]).abs().max()),
        "auto_vs_svd_nats": float((values["auto"] - values["svd"]).abs().max()),
        "log_volume_mean": float(values["svd"].mean()), "log_volume_std": float(values["svd"].std()),
    }
    reduce = {route: partial(log_volume_from_jacobians, jacobians, route=route) for route in ROUTES}
    for route, rate in best_rates(reduce, count, repeats).items():
        row[f"reduce_{route}_latents_per_s"] = rate
    if generator is not None and latents is not None:
        def end_to_end(route: str, some: Tensor) -> Callable[[], Tensor]:
            def run() -> Tensor:
                blocks, _ = map_jacobians(generator, some,
                                          lambda block: log_volume_from_jacobians(block, route=route),
                                          reduce_bytes=_reduce_bytes)
                return torch.cat(list(blocks))
            return run

        rates = best_rates({route: end_to_end(route, latents) for route in ROUTES}, latents.shape[0], repeats,
                           warmups={route: end_to_end(route, latents[:1]) for route in ROUTES})
        row["end_to_end_latents"] = latents.shape[0]
        for route, rate in rates.items():
            row[f"end_to_end_{route}_latents_per_s"] = rate
    row["reduce_gram_over_svd"] = row["reduce_gram_latents_per_s"] / row["reduce_svd_latents_per_s"]
    if "end_to_end_gram_latents_per_s" in row:
        row["end_to_end_gram_over_svd"] = row["end_to_end_gram_latents_per_s"] / row["end_to_end_svd_latents_per_s"]
    return row


SMALL = 256
"""Latents of the cheap generators (``synthetic-mlp``, ``digits-gan``), in every row."""


def generators(count: int, end_to_end: int) -> Iterator[tuple[str, Generator | None, Tensor | None, Tensor]]:
    """``(name, generator, latents for the end-to-end rows, float32 Jacobians)`` of every generator measured."""
    yield "synthetic-mlp", None, None, synthetic_jacobians(SMALL)[0].float()
    builds: list[tuple[str, Callable[[], Generator], int, int]] = [
        ("digits-gan", lambda: load_generator("digits-gan"), SMALL, SMALL), ("dcgan64", dcgan64, count, end_to_end)]
    if find_spec("gan_face_generate") is not None:
        builds.append(("face-dcgan64", lambda: load_generator(FACE_SPEC), count, end_to_end))
    else:
        print("face-dcgan64 skipped: run `make third-party` to install gan_face_generate", file=sys.stderr)
    for name, build, latents, end_to_end_latents in builds:
        generator = build()
        some = generator.sample_latents(latents, seed=1)
        yield name, generator, some[:end_to_end_latents], jacobian(generator, some)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latents", type=int, default=16)
    parser.add_argument("--end-to-end-latents", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out.open("w") if args.out else None
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")

    def emit(row: dict[str, Any]) -> None:
        line = json.dumps({"started": started, "torch": torch.__version__, "threads": torch.get_num_threads(), **row})
        print(line, flush=True)
        if out is not None:
            out.write(line + "\n")
            out.flush()

    for row in error_sweep():
        emit(row)
    for name, generator, latents, jacobians in generators(args.latents, args.end_to_end_latents):
        emit(measure(name, jacobians, generator=generator, latents=latents, repeats=args.repeats))


if __name__ == "__main__":
    main()
