"""The batching engine: concurrent requests for the same generator run as a few large Jacobian batches.

Requests are cut into jobs of at most ``max_batch`` latents (so memory is bounded whatever the request size) and
put on one bounded queue; a full queue answers ``QueueFullError`` (RESOURCE_EXHAUSTED). One consumer takes a job,
then keeps taking jobs with the same key (generator, class, options) for up to ``max_delay`` or until
``max_batch`` latents, and runs the merged batch on the device in a worker thread: one ``log_volume_estimate``
call (chunked by the geometry's memory budget), and singular values and tile codes when asked. A job whose
caller went away (deadline, cancel) is dropped before it runs. Results are per latent, so merging only changes
float round-off; a merged batch that fails runs again job by job, so a failure reaches only the calls it belongs to.

Fairness: one call keeps at most ``WINDOW`` jobs in the queue, so a million-latent pool takes turns with a
two-latent request instead of making it wait for the whole pool. Samplers (SIR, SMC, MCMC) run on their own threads
and send every batch of log-volumes they need through the same queue, so they pass the same admission limit,
interleave with everything else, and stop as soon as their call is cancelled.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import Tensor

from gendebias.errors import QueueFullError
from gendebias.generators import Generator
from gendebias.geometry import log_volume_estimate, singular_values, tile_codes
from gendebias.service.metrics import Metrics

T = TypeVar("T")
WINDOW = 1  # jobs one call keeps in the queue at once: a small call waits for at most one job of a large one
ADMISSION = 2  # free queue slots a multi-job call needs to be admitted (its window and one to spare)
SAMPLER_THREADS = 16  # samplers run here and wait on the device thread for their log-volumes


@dataclass(frozen=True)
class Options:
    """What to compute; jobs merge only when their options (and generator) are equal."""

    top_k: int | None = None
    singular_values: bool = False
    tile_codes: bool = False
    method: str = "exact"
    precision: str = "fp32"
    power_iterations: int | None = None
    projection_dim: int | None = None
    seed: int | None = None

    def method_options(self) -> dict[str, int]:
        """The chosen method's own keyword arguments (only those that were set)."""
        names = {"randomized": ("power_iterations", "seed"), "projection": ("projection_dim", "seed")}
        chosen = {name: getattr(self, name) for name in names.get(self.method, ())}
        return {name: value for name, value in chosen.items() if value is not None}


@dataclass
class Volumes:
    """Per-latent results: ``log_volumes (N,)`` float64, ``singular_values (N, k)``, ``tile_codes (N,)``,
    ``errors (N,)`` float64 (the method's error estimate), and what ran: ``method``, ``precision``, ``products``
    per latent."""

    log_volumes: Tensor
    singular_values: Tensor | None = None
    tile_codes: Tensor | None = None
    errors: Tensor | None = None
    method: str = "exact"
    precision: str = "fp32"
    products: int = 0


@dataclass
class _Job:
    generator_id: str
    generator: Generator
    latents: Tensor
    options: Options
    future: asyncio.Future[Volumes] = field(repr=False)

    @property
    def key(self) -> tuple[str, int | None, Options]:
        return self.generator_id, self.generator.label, self.options


class BatchingEngine:
    """Merge log-volume jobs into device batches. Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, *, max_batch: int, max_delay: float, queue_size: int, metrics: Metrics) -> None:
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.metrics = metrics
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=queue_size)
        self._held: _Job | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gendebias-device")
        self._samplers = ThreadPoolExecutor(max_workers=SAMPLER_THREADS, thread_name_prefix="gendebias-sampler")
        self._consumer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._consumer = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
            await asyncio.gather(self._consumer, return_exceptions=True)
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._samplers.shutdown(wait=False, cancel_futures=True)

    async def run(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``function`` on the device thread (samplers that batch their own particles)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))

    def admit(self, jobs: int = 1) -> None:
        """Refuse (``QueueFullError``) unless ``jobs`` more jobs fit the queue now: the one admission check every
        request passes before any work."""
        if self._queue.maxsize - self._queue.qsize() < jobs:
            raise QueueFullError(f"the server's work queue is full ({self._queue.qsize()} jobs waiting); "
                                 "retry with backoff")

    async def run_sampler(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a sampler on a sampler thread; its log-volumes come back through :meth:`log_volumes`."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._samplers, functools.partial(function, *args, **kwargs))

    async def log_volumes(self, generator_id: str, generator: Generator, latents: Tensor,
                          options: Options = Options(), *, admitted: bool = False) -> Volumes:
        """Results for ``latents`` ``(N, *latent_shape)``, computed in jobs of at most ``max_batch`` latents.

        A call keeps at most :data:`WINDOW` jobs in the queue at once, so a large request takes turns with the
        others instead of filling the queue ahead of them. A call that is not ``admitted`` yet is refused when its
        first jobs do not fit; later jobs wait for room. Cancelling the call drops its queued jobs.
        """
        loop = asyncio.get_running_loop()
        count = latents.shape[0]
        if not admitted:  # before any piece exists: a million views of one latent cost gigabytes of tensor headers
            self.admit(min(ADMISSION, math.ceil(count / self.max_batch)))
        jobs: list[_Job] = []
        try:
            for start in range(0, max(count, 1), self.max_batch):  # no latents: one empty job, as before
                piece = latents[start:start + self.max_batch]
                if len(jobs) >= WINDOW:
                    await asyncio.wait({jobs[-WINDOW].future})
                job = _Job(generator_id, generator, piece, options, loop.create_future())
                await self._queue.put(job)
                jobs.append(job)
                self.metrics.queue_depth.set(self._queue.qsize())
            results = await asyncio.gather(*(job.future for job in jobs))
        except BaseException:
            for job in jobs:
                job.future.cancel()
            raise
        if len(results) == 1:
            return results[0]
        return Volumes(torch.cat([r.log_volumes for r in results]), _cat([r.singular_values for r in results]),
                       _cat([r.tile_codes for r in results]), _cat([r.errors for r in results]),
                       results[0].method, results[0].precision, results[0].products)

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            batch = [job for job in batch if not job.future.done()]
            self.metrics.queue_depth.set(self._queue.qsize())
            if batch:
                await self._settle(batch)

    async def _settle(self, batch: list[_Job]) -> None:
        """Compute ``batch`` and answer its jobs. When a batch of several jobs fails (a generator that raises, NaN,
        out of memory on some latents), each job runs again alone, so the error reaches only the calls whose
        latents cause it."""
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, _compute, batch)
        except Exception as error:
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(error)
                return
            for job in batch:
                if not job.future.done():
                    await self._settle([job])
            return
        self.metrics.batch_size.observe(sum(job.latents.shape[0] for job in batch))
        self.metrics.batch_jobs.observe(len(batch))
        self.metrics.latents.labels(batch[0].generator_id).inc(sum(job.latents.shape[0] for job in batch))
        for job, result in zip(batch, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)

    async def _collect(self) -> list[_Job]:
        """One job, then the jobs with the same key already queued or arriving within ``max_delay``, up to
        ``max_batch`` latents. (It sleeps once rather than racing ``wait_for`` on ``Queue.get``, which can lose an
        item that arrives as the timeout fires.)"""
        first = self._held or await self._queue.get()
        self._held = None
        batch, count = [first], first.latents.shape[0]
        waited = False
        while count < self.max_batch and self._held is None:
            if self._queue.empty():
                if waited or self.max_delay <= 0:
                    break
                await asyncio.sleep(self.max_delay)
                waited = True
                continue
            job = self._queue.get_nowait()
            if job.key != first.key or count + job.latents.shape[0] > self.max_batch:
                self._held = job
            else:
                batch.append(job)
                count += job.latents.shape[0]
        return batch


def _compute(batch: list[_Job]) -> list[Volumes]:
    """Run one merged batch on the device (worker thread): one log-volume call for every latent of the batch,
    chunked by the geometry's memory budget (singular values, when asked, take a second Jacobian pass)."""
    generator, options = batch[0].generator, batch[0].options
    latents = torch.cat([job.latents for job in batch])
    estimate = log_volume_estimate(generator, latents, method=options.method,
                                   top_k=options.top_k, precision=options.precision,
                                   **options.method_options())
    sigma = (singular_values(generator, latents, top_k=options.top_k, precision=options.precision)
             if options.singular_values else None)
    codes = tile_codes(generator, latents) if options.tile_codes else None
    sizes = [job.latents.shape[0] for job in batch]
    parts = zip(estimate.log_volume.split(sizes), _split(sigma, sizes), _split(codes, sizes),
                estimate.error.split(sizes), strict=True)
    return [Volumes(v, s, c, e, estimate.method, estimate.precision, estimate.products) for v, s, c, e in parts]


def _split(values: Tensor | None, sizes: list[int]) -> list[Tensor | None]:
    return [None] * len(sizes) if values is None else list(values.split(sizes))


def _cat(parts: list[Tensor | None]) -> Tensor | None:
    return None if parts[0] is None else torch.cat([p for p in parts if p is not None])
