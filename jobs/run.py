"""``batch volumes`` and ``batch resample``: plan shards, skip the finished ones, run the rest, combine.

Global normalisation takes two passes: each shard stores the log-sum-exp of its log-weights (and of their squares,
and their maximum); the driver combines them into the global normaliser, the ESS and the largest weight. Resampling
draws the shard of each of the ``n`` draws by a multinomial over shard masses, then the draws within each shard by
a multinomial over that shard's weights (:func:`gendebias.geometry.resample` both times): together exactly
multinomial resampling of the whole pool, and a pure function of the stored shards and the seed, so local and Ray
runs, and interrupted and resumed runs, give the same bytes. ``--sampler smc`` runs an independent SMC population
per shard and weights the populations by their normalising-constant estimates instead.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from gendebias.errors import InvalidArgumentError
from gendebias.generators import Generator, load_generator, resolve_device
from gendebias.generators.spec import sha256_of
from gendebias.geometry import effective_sample_size, log_volume, resample
from gendebias.geometry.sampling import POOL_ESS_PER_DRAW
from gendebias.geometry.weights import tilted
from gendebias.jobs.engines import map_shards
from gendebias.jobs.latent_files import open_latents, shard_count
from gendebias.jobs.progress import Progress
from gendebias.jobs.shards import ShardTask, proposals, shard_seed
from gendebias.jobs.storage import JobFolder, atomic_write, parquet_bytes, read_json, write_json

FORMAT = 1


def run_volumes(generator_source: str, latents_path: str | Path, out: str | Path, *, shard_size: int = 65_536,
                engine: str = "local", top_k: int | None = None, tile_codes: bool = False,
                singular_values: bool = False, chunk_size: int | None = 64, workers: int | None = None,
                ray_address: str | None = None, progress: bool = True, device: str = "auto") -> dict[str, Any]:
    """Log-volumes of every latent of a file, one Parquet shard at a time; returns the summary.

    ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``...) is where shards run; it is not part of the job's identity,
    so a job may resume on another device (its shards then differ in float round-off only).
    """
    generator = load_generator(generator_source)
    _check_device(device, engine)
    file = open_latents(latents_path, generator.latent_shape)
    _check_shard_size(shard_size)
    spec = {"kind": "volumes", "format": FORMAT, **_describe(generator_source, generator),
            "latents": str(Path(latents_path).resolve()), "latents_sha256": sha256_of(file.path), "rows": file.rows,
            "shard_size": shard_size, "top_k": top_k, "tile_codes": tile_codes, "singular_values": singular_values}
    folder = JobFolder(out)
    folder.claim(spec)
    tasks = [ShardTask("volumes", str(folder.root), i, i * shard_size, min(file.rows, (i + 1) * shard_size),
                       latents_path=str(file.path), top_k=top_k, tile_codes=tile_codes,
                       singular_values=singular_values, chunk_size=chunk_size)
             for i in range(shard_count(file.rows, shard_size))]
    entries = _run(tasks, folder, generator_source, engine, workers, ray_address, progress, device)
    summary = {"kind": "volumes", "generator_id": spec["generator_id"], "rows": file.rows, "shards": len(entries),
               "log_volume": _volume_summary(entries)}
    _finish(folder, entries, summary)
    return summary


def run_resample(generator_source: str, out: str | Path, *, proposals_count: int, n: int, rho: float = 1.0,
                 seed: int = 0, sampler: str = "auto", shard_size: int = 65_536, engine: str = "local",
                 top_k: int | None = None, chunk_size: int | None = 64, workers: int | None = None,
                 ray_address: str | None = None, progress: bool = True, device: str = "auto") -> dict[str, Any]:
    """``n`` debiased latents from ``proposals_count`` seeded prior proposals (target ``tilted``); ``device`` as
    for :func:`run_volumes`."""
    generator = load_generator(generator_source)
    _check_device(device, engine)
    if sampler not in ("auto", "sir", "smc"):
        raise InvalidArgumentError(f"batch resample serves samplers ['auto', 'sir', 'smc'], got {sampler!r}",
                                   field="sampler")
    for name, value in (("proposals", proposals_count), ("n", n)):
        if value < 1:
            raise InvalidArgumentError(f"{name} must be >= 1, got {value}", field=name)
    if not math.isfinite(rho):
        raise InvalidArgumentError(f"rho must be finite, got {rho}", field="rho")
    _check_shard_size(shard_size)
    choice = "requested"
    if sampler == "auto":
        sampler, choice = _choose(generator, proposals_count, n, rho, seed, top_k)
    spec = {"kind": "resample", "format": FORMAT, **_describe(generator_source, generator),
            "proposals": proposals_count, "n": n, "rho": rho, "seed": seed, "sampler": sampler,
            "shard_size": shard_size, "top_k": top_k, "scheme": "multinomial"}
    folder = JobFolder(out)
    folder.claim(spec)
    tasks = [ShardTask("smc" if sampler == "smc" else "proposals", str(folder.root), i, i * shard_size,
                       min(proposals_count, (i + 1) * shard_size), seed=seed, rho=rho, top_k=top_k,
                       chunk_size=chunk_size) for i in range(shard_count(proposals_count, shard_size))]
    entries = _run(tasks, folder, generator_source, engine, workers, ray_address, progress, device)
    draws = _draw(folder, generator, entries, n=n, seed=seed, sampler=sampler, shard_size=shard_size)
    summary = {"kind": "resample", "generator_id": spec["generator_id"], "proposals": proposals_count, "n": n,
               "rho": rho, "seed": seed, "sampler": sampler, "choice": choice, "scheme": "multinomial",
               "shards": len(entries), **draws}
    _finish(folder, entries, summary)
    return summary


PILOT = 2048


def _choose(generator: Generator, proposals: int, n: int, rho: float, seed: int,
            top_k: int | None) -> tuple[str, str]:
    """Auto: ``sir`` when a pilot of prior latents predicts a pool ESS of at least ``POOL_ESS_PER_DRAW * n`` for the
    whole pool (the library's auto rule), else ``smc`` (independent populations per shard). Seeded, so a resumed job
    makes the same choice."""
    size = min(PILOT, proposals)
    latents = generator.sample_latents(size, seed=shard_seed(seed, 0, 7))
    weights = tilted(log_volume(generator, latents, top_k=top_k).cpu().double(), rho)
    share = effective_sample_size(weights) / size
    predicted = share * proposals
    sampler = "sir" if predicted >= POOL_ESS_PER_DRAW * n else "smc"
    return sampler, (f"{sampler}: a pilot of {size} prior latents had weight ESS {share:.1%}, so the pool of "
                     f"{proposals} is predicted to have ESS {predicted:.0f} for n = {n}")


def _check_device(device: str, engine: str) -> None:
    """Refuse a device this process cannot use before any work (Ray checks its cluster's GPUs itself)."""
    if engine != "ray":
        resolve_device(device)


def _run(tasks: list[ShardTask], folder: JobFolder, generator_source: str, engine: str, workers: int | None,
         ray_address: str | None, progress: bool, device: str) -> list[dict[str, Any]]:
    entries = {task.index: folder.finished(task.index) for task in tasks}
    pending = [task for task in tasks if entries[task.index] is None]
    meter = Progress(shards=len(tasks), done=len(tasks) - len(pending), enabled=progress)
    for entry in map_shards(pending, generator_source=generator_source, engine=engine, workers=workers,
                            ray_address=ray_address, device=device):
        entries[entry["shard"]] = entry
        meter.advance(entry["rows"])
    return [entries[task.index] for task in tasks]


def _draw(folder: JobFolder, generator: Generator, entries: list[dict[str, Any]], *, n: int, seed: int,
          sampler: str, shard_size: int) -> dict[str, Any]:
    """Two-stage multinomial: shards by mass, then latents within each shard; writes ``resampled.parquet``."""
    if sampler == "smc":
        log_masses = torch.tensor([e["log_normalizer"] + math.log(e["rows"]) for e in entries], dtype=torch.float64)
    else:
        log_masses = torch.tensor([e["log_mass"] for e in entries], dtype=torch.float64)
    total = torch.logsumexp(log_masses, 0)
    counts = torch.bincount(resample(log_masses, n, seed=seed), minlength=len(entries))
    ids, latents, weights = [], [], []
    for entry, count in zip(entries, counts.tolist(), strict=True):
        if count == 0:
            continue
        table = pq.read_table(folder.shard_path(entry["shard"]))
        start = entry["shard"] * shard_size
        if sampler == "smc":
            within = resample(torch.zeros(entry["rows"], dtype=torch.float64), count,
                              seed=shard_seed(seed, entry["shard"], 1))
            column = table.column("latents").combine_chunks()
            shard_latents = column.values.to_numpy().reshape(entry["rows"], -1)
            chosen = shard_latents[within.numpy()]
            log_w = np.full(count, math.nan)
        else:
            shard_weights = tilted(torch.from_numpy(table.column("log_volume").to_numpy().copy()),
                                   read_json(folder.root / "job.json")["rho"])
            within = resample(shard_weights, count, seed=shard_seed(seed, entry["shard"], 1))
            chosen = proposals(generator, seed, entry["shard"], entry["rows"])[within].flatten(1).cpu().numpy()
            log_w = (shard_weights[within] - total).numpy()
        ids.append(start + within.numpy())
        latents.append(chosen)
        weights.append(log_w)
    drawn_ids, drawn = np.concatenate(ids), np.concatenate(latents)
    table = pa.table({"latent_id": pa.array(drawn_ids),
                      "latents": pa.FixedSizeListArray.from_arrays(pa.array(drawn.reshape(-1)), drawn.shape[1]),
                      "log_weight": pa.array(np.concatenate(weights))})
    atomic_write(folder.root / "resampled.parquet", parquet_bytes(table))
    result = {"distinct": int(np.unique(drawn_ids).size), "file": "resampled.parquet"}
    if sampler == "sir":
        square = torch.logsumexp(torch.tensor([e["log_square_mass"] for e in entries], dtype=torch.float64), 0)
        result["ess"] = float(torch.exp(2 * total - square))
        result["max_weight"] = float(torch.exp(max(e["log_max"] for e in entries) - total))
    else:
        result["log_normalizer"] = float(total - math.log(sum(e["rows"] for e in entries)))
        result["min_step_ess"] = min(e["min_ess"] for e in entries)
        result["evaluations"] = sum(e["evaluations"] for e in entries)
    return result


def _volume_summary(entries: list[dict[str, Any]]) -> dict[str, float]:
    count = sum(e["stats"]["count"] for e in entries)
    mean = sum(e["stats"]["sum"] for e in entries) / max(count, 1)
    variance = sum(e["stats"]["sum_squares"] for e in entries) / max(count, 1) - mean**2
    return {"mean": mean, "std": math.sqrt(max(variance, 0.0)), "min": min(e["stats"]["min"] for e in entries),
            "max": max(e["stats"]["max"] for e in entries),
            "minus_inf": int(sum(e["stats"]["minus_inf"] for e in entries))}


def _finish(folder: JobFolder, entries: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    write_json(folder.root / "manifest.json", {"shards": entries})
    write_json(folder.root / "summary.json", summary)


def _describe(source: str, generator: Generator) -> dict[str, Any]:
    info = generator.info()
    return {"generator_id": source, "latent_shape": list(info.latent_shape),
            "output_shape": list(info.output_shape), "dtype": info.dtype}


def _check_shard_size(shard_size: int) -> None:
    if shard_size < 1:
        raise InvalidArgumentError(f"shard size must be >= 1, got {shard_size}", field="shard_size")
