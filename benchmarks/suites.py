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
Builder = Callable[..., Any]
"""A generator factory taking ``device=`` (the functions of ``benchmarks/models.py``, partially applied)."""


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
    "gpu": Settings(time_budget_s=420, repeats=3, row_seconds=20, per_sample_seconds=30, warmup_latents=2),
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
        build: Builder = partial(dcgan, latent_dim=24, widths=(16, 8))
        name, count, top_k = "dcgan-tiny", 8, 4
    else:
        build, name, count, top_k = partial(dcgan64), "dcgan64", 16, TOP_K
    dcgan_plan = Plan(name, _on_device(build), latents=count,
                      forward_batches=(8, 32) if tiny else (8, 16, 32, 64, 128),
                      per_sample_latents=1, top_k=top_k, top_k_rows=("exact", "projection", "randomized"),
                      top_k_latents=count // 2, precisions=("bf16",), precision_latents=count // 2,
                      budgets=budgets, budget_latents=count // 2)
    return [digits, dcgan_plan]


def gpu_plans(*, tiny: bool) -> list[Plan]:
    """DCGAN-64 (256 latents) and DCGAN-256 (d = 512) exact in fp32/tf32/bf16 under ``--budget-gb``, with both
    baselines; the SD-like decoder's randomized vs exact top-30 at 4x16x16 and randomized alone at 4x32x32."""
    suffix = "-tiny" if tiny else ""
    if tiny:
        small: Builder = partial(dcgan, latent_dim=24, widths=(16, 8))
        large: Builder = partial(dcgan, latent_dim=32, widths=(16, 8, 8))
        decoder: Builder = partial(sd_like_decoder, block_out_channels=(8, 16), norm_num_groups=4)
        counts, sd_sizes, top_k = (8, 4), (4, 8), 5
        batches: tuple[int, ...] = (8, 32)
        sd_batches: tuple[int, ...] = (8, 64)
    else:
        small, large, decoder = partial(dcgan64), partial(dcgan256), partial(sd_like_decoder)
        counts, sd_sizes, top_k = (256, 32), (16, 32), TOP_K
        batches, sd_batches = (64, 256, 1024, 4096), (4, 16, 64)
    # top-k rows of DCGAN-256 on 8 latents: exact top-k takes the SVD of a float64 196,608 x 512 J per latent
    dcgans = [
        Plan(name + suffix, _on_device(build), latents=count, forward_batches=batches, per_sample_latents=4,
             top_k=top_k, top_k_rows=("exact", "projection"), top_k_latents=top_k_count,
             precisions=("tf32", "bf16"), precision_latents=count, use_budget=True)
        for name, build, count, top_k_count in (("dcgan64", small, counts[0], counts[0]),
                                                ("dcgan256-d512", large, counts[1], min(counts[1], 8)))
    ]
    decoders = [
        Plan(f"sd-like-4x{size}x{size}{suffix}", _on_device(partial(decoder, latent_hw=size)), latents=4,
             forward_batches=sd_batches, exact=False, top_k=top_k,
             top_k_rows=("exact", "randomized") if index == 0 else ("randomized",), top_k_latents=4,
             use_budget=True)
        for index, size in enumerate(sd_sizes)
    ]
    return dcgans + decoders


def _on_device(build: Builder) -> Callable[[torch.device], Any]:
    """``build(device=...)`` as the one-argument ``Plan.build``."""
    return lambda device: build(device=device)
