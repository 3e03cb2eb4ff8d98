"""One shard of work, the same on every engine: compute it and write it (atomically) into the job folder.

A shard of proposals is defined by ``(generator, seed, shard index)``: its latents are regenerated wherever it runs
(``generator.sample_latents(rows, seed=shard_seed(seed, index))``), so workers receive a few numbers, not arrays.
A shard of a latents file is a row range of that file. Workers use :mod:`gendebias.geometry` only; no maths here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from gendebias.generators import Generator
from gendebias.geometry import SMCTrace, log_volume, sample, singular_values, tile_codes
from gendebias.geometry.weights import tilted
from gendebias.jobs.latent_files import open_latents
from gendebias.jobs.storage import JobFolder


@dataclass(frozen=True)
class ShardTask:
    """Everything a worker needs (small and picklable)."""

    kind: str  # "volumes" | "proposals" | "smc"
    out: str
    index: int
    start: int
    stop: int
    latents_path: str | None = None
    seed: int = 0
    rho: float = 1.0
    top_k: int | None = None
    tile_codes: bool = False
    singular_values: bool = False
    chunk_size: int | None = 64


def shard_seed(seed: int, index: int, purpose: int = 0) -> int:
    """A 63-bit seed for shard ``index`` derived from the job seed (NumPy ``SeedSequence``: stable everywhere)."""
    words = np.random.SeedSequence([seed, index, purpose]).generate_state(2, dtype=np.uint32)
    return int((int(words[0]) << 31) ^ int(words[1])) & (2**63 - 1)


def proposals(generator: Generator, seed: int, index: int, rows: int) -> torch.Tensor:
    return generator.sample_latents(rows, seed=shard_seed(seed, index))


def run_shard(task: ShardTask, generator: Generator) -> dict[str, Any]:
    """Compute shard ``task.index`` and write its Parquet file and sidecar; returns the sidecar entry."""
    rows = task.stop - task.start
    if task.kind == "smc":
        return _smc_shard(task, generator, rows)
    if task.kind == "volumes":
        assert task.latents_path is not None
        array = open_latents(task.latents_path, generator.latent_shape).read(task.start, task.stop)
        latents = torch.from_numpy(array).to(device=generator.device, dtype=generator.dtype)
    else:
        latents = proposals(generator, task.seed, task.index, rows)
    volumes = log_volume(generator, latents, top_k=task.top_k, chunk_size=task.chunk_size)
    columns: dict[str, Any] = {"latent_id": pa.array(np.arange(task.start, task.stop, dtype=np.int64)),
                               "log_volume": pa.array(volumes.cpu().numpy())}
    if task.tile_codes:
        columns["tile_code"] = pa.array(tile_codes(generator, latents).cpu().numpy())
    if task.singular_values:
        sigma = singular_values(generator, latents, top_k=task.top_k, chunk_size=task.chunk_size).cpu().numpy()
        columns["singular_values"] = pa.FixedSizeListArray.from_arrays(pa.array(sigma.reshape(-1)), sigma.shape[1])
    log_weights = tilted(volumes.cpu().double(), task.rho)
    return JobFolder(task.out).write_shard(task.index, pa.table(columns), {
        "stats": _stats(volumes), "log_mass": float(torch.logsumexp(log_weights, 0)),
        "log_square_mass": float(torch.logsumexp(2 * log_weights, 0)), "log_max": float(log_weights.max())})


def _smc_shard(task: ShardTask, generator: Generator, rows: int) -> dict[str, Any]:
    """An independent SMC population of ``rows`` particles; its normalising constant weights it in the union."""
    result = sample(generator, rows, rho=task.rho, top_k=task.top_k, sampler="smc",
                    seed=shard_seed(task.seed, task.index), chunk_size=task.chunk_size)
    flat = result.latents.flatten(1).cpu().numpy()
    columns = {"latent_id": pa.array(np.arange(task.start, task.start + flat.shape[0], dtype=np.int64)),
               "latents": pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])}
    trace = result.trace
    assert isinstance(trace, SMCTrace)
    return JobFolder(task.out).write_shard(task.index, pa.table(columns), {
        "log_normalizer": trace.log_normalizer, "evaluations": result.evaluations, "stopped": result.stopped,
        "beta": result.beta, "ess": result.ess, "min_ess": min(trace.step_ess) if trace.step_ess else 0.0})


def _stats(volumes: torch.Tensor) -> dict[str, float]:
    values = volumes.cpu().double()
    finite = values[torch.isfinite(values)]
    return {"count": float(finite.numel()), "sum": float(finite.sum()), "sum_squares": float((finite**2).sum()),
            "min": float(finite.min()) if finite.numel() else math.nan,
            "max": float(finite.max()) if finite.numel() else math.nan,
            "minus_inf": float(values.numel() - finite.numel())}
