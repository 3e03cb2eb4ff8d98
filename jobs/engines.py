"""Where shards run: ``local`` (this process) or ``ray`` (Ray Data ``map_batches`` over a pool of actors, one
generator copy per actor, on a local Ray instance or the cluster at ``--ray-address`` / ``RAY_ADDRESS``).

Both run :func:`gendebias.jobs.shards.run_shard`, so their outputs are byte-identical. Ray is an optional extra:
``pip install 'gendebias[distributed]'``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from gendebias.errors import InvalidArgumentError
from gendebias.generators import load_generator, resolve_device
from gendebias.jobs.shards import ShardTask, run_shard

ENGINES = ("local", "ray")


def map_shards(tasks: list[ShardTask], *, generator_source: str, engine: str, workers: int | None = None,
               ray_address: str | None = None, device: str = "auto") -> Iterator[dict[str, Any]]:
    """Run every task and yield its sidecar entry as it finishes (order not guaranteed on Ray).

    ``device`` is where each generator copy runs (``"auto"``: a CUDA device when the process sees one). On Ray, a
    CUDA device gives every actor one GPU (``num_gpus=1``) and the default pool is one actor per GPU.
    """
    if engine not in ENGINES:
        raise InvalidArgumentError(f"unknown engine {engine!r}; choose one of {list(ENGINES)}", field="engine")
    if not tasks:
        return
    if engine == "local":
        generator = load_generator(generator_source).to(resolve_device(device))
        for task in tasks:
            yield run_shard(task, generator)
        return
    yield from _ray(tasks, generator_source, workers, ray_address, device)


class _RayWorker:
    """A Ray actor: loads the generator once, then runs the shards of each batch it receives."""

    def __init__(self, generator_source: str, device: str) -> None:
        self.generator = load_generator(generator_source).to(resolve_device(device))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        entries = [run_shard(ShardTask(**_row(batch, i)), self.generator) for i in range(len(batch["index"]))]
        return {"entry": entries}


def _row(batch: dict[str, Any], i: int) -> dict[str, Any]:
    row = {key: values[i] for key, values in batch.items()}
    row = {key: (value.item() if hasattr(value, "item") else value) for key, value in row.items()}
    return {key: (None if value == "" else value) for key, value in row.items()}  # Ray rows carry no None


def _ray(tasks: list[ShardTask], generator_source: str, workers: int | None,
         ray_address: str | None, device: str) -> Iterator[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise InvalidArgumentError("--engine ray needs Ray: pip install 'gendebias[distributed]'",
                                   field="engine") from None
    address = ray_address or os.environ.get("RAY_ADDRESS")
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0)) if device == "auto" or device.startswith("cuda") else 0
    if device.startswith("cuda") and not gpus:
        raise InvalidArgumentError(f"device {device!r} asked for, but the Ray cluster has no GPU", field="device")
    actors = workers or (gpus or max(1, int(resources.get("CPU", 1)) - 1))  # CPUs: leave one for Ray Data's reads
    rows = [{key: ("" if value is None else value) for key, value in asdict(task).items()} for task in tasks]
    dataset = ray.data.from_items(rows).map_batches(
        _RayWorker, fn_constructor_kwargs={"generator_source": generator_source,
                                           "device": "cuda" if gpus else "cpu"},
        batch_size=1, concurrency=actors, num_cpus=1, num_gpus=1 if gpus else None, batch_format="numpy")
    for row in dataset.iter_rows():
        yield row["entry"]
