"""What each suite of ``benchmarks/jacobian.py`` measures: one :class:`Plan` per generator, and the suite's timing
:class:`Settings`.

``smoke`` is the ``cpu`` and ``gpu`` plans with tiny generators and sizes (``tiny=True``), so it runs every row type
and code path of both in under a minute on CPU.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from models import dcgan, dcgan64, dcgan256, sd_like_decoder

from gendebias.generators import load_generator

MiB, GiB = 2**20, 2**30
CPU_BUDGETS = (16 * MiB, 64 * MiB, 256 * MiB, 1 * GiB)
"""The CPU memory-budget sweep (geometry's CPU default is 64 MiB)."""
TOP_K = 30


@dataclass(frozen=True)
class Settings:
    """Timing of a suite: total ``time_budget_s``; best of ``repeats`` runs, at most ``row_seconds`` of repeats per
    row; the per-sample baseline measured for at most ``per_sample_seconds``; warm-up on ``warmup_latents``;
    ``threads``: ``torch.set_num_threads`` (None: torch's default). Smoke runs single-threaded: tiny models gain
    nothing from threads, and OpenMP barriers on a busy 2-core machine slowed them 200-fold (measured)."""

    time_budget_s: float
    repeats: int
    row_seconds: float
    per_sample_seconds: float
    warmup_latents: int
    threads: int | None = None

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


SETTINGS = {
    "cpu": Settings(time_budget_s=540, repeats=3, row_seconds=30, per_sample_seconds=120, warmup_latents=2),
    "gpu": Settings(time_budget_s=450, repeats=3, row_seconds=20, per_sample_seconds=30, warmup_latents=2),
    "smoke": Settings(time_budget_s=120, repeats=2, row_seconds=2, per_sample_seconds=3, warmup_latents=1, threads=1),
}


@dataclass(frozen=True)
class Plan:
    """The rows measured on one generator (``build(device)``).

    ``latents``: the exact fp32 row (skipped when ``exact`` is False); ``per_sample_latents``: the
    ``autograd.functional`` baseline (0: none); ``top_k_rows``: any of ``"exact"``, ``"projection"``,
    ``"randomized"`` at ``top_k`` on ``top_k_latents``; ``precisions``: exact rows in ``tf32``/``bf16`` on
    ``precision_latents``; ``budgets``: exact fp32 rows at these memory budgets on ``budget_latents``.
    ``use_budget``: every other row gets the ``--budget-gb`` memory budget (else geometry's default).
    """

    name: str
    build: Callable[[torch.device], Any]
    latents: int
    forward_batches: tuple[int, ...]
    exact: bool = True
    per_sample_latents: int = 0
    top_k: int | None = None
    top_k_rows: tuple[str, ...] = ()
    top_k_latents: int = 0
    precisions: tuple[str, ...] = ()
    precision_latents: int = 0
    budgets: tuple[int, ...] = ()
    budget_latents: int = 0
    use_budget: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    def memory_budget(self, given: int) -> int | None:
        return given if self.use_budget else None


def plans(suite: str) -> list[Plan]:
    if suite == "cpu":
        return cpu_plans(tiny=False)
    if suite == "gpu":
        return gpu_plans(tiny=False)
    return cpu_plans(tiny=True) + gpu_plans(tiny=True)


def cpu_plans(*, tiny: bool) -> list[Plan]:
    """digits-gan and DCGAN-64: exact fp32 with its bound, the per-sample baseline, the memory-budget sweep,
    top-30 exact / randomized / projection, and bf16 accuracy."""
    budgets = (16 * MiB, 256 * MiB) if tiny else CPU_BUDGETS
    digits = Plan("digits-gan", lambda device: load_generator("digits-gan").to(device),
                  latents=256 if tiny else 4096, forward_batches=(64, 256) if tiny else (256, 1024, 4096),
                  per_sample_latents=4 if tiny else 16, budgets=budgets, budget_latents=256 if tiny else 2048)
    if tiny:
        build, name, count, top_k = partial(dcgan, latent_dim=24, widths=(16, 8)), "dcgan-tiny", 8, 4
    else:
        build, name, count, top_k = partial(dcgan64), "dcgan64", 16, TOP_K
    dcgan_plan = Plan(name, lambda device: build(device=device), latents=count,
                      forward_batches=(8, 32) if tiny else (8, 16, 32, 64, 128),
                      per_sample_latents=1, top_k=top_k, top_k_rows=("exact", "projection", "randomized"),
                      top_k_latents=count // 2, precisions=("bf16",), precision_latents=count // 2,
                      budgets=budgets, budget_latents=count // 2)
    return [digits, dcgan_plan]


def gpu_plans(*, tiny: bool) -> list[Plan]:
    """DCGAN-64 (256 latents) and DCGAN-256 (d = 512) exact in fp32/tf32/bf16 under ``--budget-gb``, with both
    baselines; the SD-like decoder's randomized vs exact top-30 at 4x16x16 and randomized alone at 4x32x32."""
    if tiny:
        small = partial(dcgan, latent_dim=24, widths=(16, 8))
        large = partial(dcgan, latent_dim=32, widths=(16, 8, 8))
        sd = {"block_out_channels": (8, 16), "norm_num_groups": 4}
        sizes = {"small": 8, "large": 4, "sd_hw": (4, 8), "top_k": 5, "batches": (8, 32), "sd_batches": (8, 64)}
    else:
        small, large, sd = partial(dcgan64), partial(dcgan256), {}
        sizes = {"small": 256, "large": 32, "sd_hw": (16, 32), "top_k": TOP_K, "batches": (64, 256, 1024, 4096),
                 "sd_batches": (4, 16, 64)}
    dcgans = [
        Plan(name, lambda device, build=build: build(device=device), latents=count,
             forward_batches=sizes["batches"], per_sample_latents=4, top_k=sizes["top_k"],
             top_k_rows=("exact", "projection"), top_k_latents=count, precisions=("tf32", "bf16"),
             precision_latents=count, use_budget=True)
        for name, build, count in (("dcgan64" + "-tiny" * tiny, small, sizes["small"]),
                                   ("dcgan256-d512" + "-tiny" * tiny, large, sizes["large"]))
    ]
    decoders = [
        Plan(f"sd-like-4x{hw}x{hw}" + "-tiny" * tiny,
             lambda device, hw=hw: sd_like_decoder(latent_hw=hw, device=device, **sd), latents=4,
             forward_batches=sizes["sd_batches"], exact=False, top_k=sizes["top_k"],
             top_k_rows=("exact", "randomized") if index == 0 else ("randomized",), top_k_latents=4,
             use_budget=True)
        for index, hw in enumerate(sizes["sd_hw"])
    ]
    return dcgans + decoders
