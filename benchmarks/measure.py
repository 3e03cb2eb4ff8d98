"""Measuring instruments of the Jacobian benchmark: wall time, peak memory, forward throughput, accuracy, and the
per-sample ``torch.autograd.functional.jacobian`` baseline.

Timing: a run is bracketed by ``torch.cuda.synchronize`` on CUDA, and a row reports the best of up to ``repeats``
runs after one warm-up (a run on a small prefix of the latents, so lazy initialisation is not timed).

Memory: on CUDA, ``torch.cuda.max_memory_allocated`` over the timed runs (the whole process's tensors: weights,
latents and the computation); on CPU, the growth of the resident set size over its value at the start, sampled
every few milliseconds from ``/proc/self/statm`` (None where there is no ``/proc``), after ``malloc_trim(0)`` has
returned the C allocator's free memory to the system. Memory the allocator still keeps from earlier rows is reused
without growing the RSS, so the CPU figure is a lower bound on what a cold process would need.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from gendebias.geometry import log_volume_from_jacobians
from gendebias.geometry.precision import Precision, lowered, precision_mode

T = TypeVar("T")
RSS_INTERVAL_S = 0.005
STATM = Path("/proc/self/statm")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(call: Callable[[], T], *, device: torch.device, repeats: int,
              max_seconds: float) -> tuple[float, int, T]:
    """``(best seconds, runs, last result)`` of up to ``repeats`` runs of ``call``; stops early once another run
    would push the total past ``max_seconds`` (always at least one run)."""
    best, spent, runs = math.inf, 0.0, 0
    result: Any = None
    while runs < repeats and (runs == 0 or spent + best <= max_seconds):
        synchronize(device)
        start = time.perf_counter()
        result = call()
        synchronize(device)
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best, runs, result


class MemoryMeter:
    """Peak memory of the enclosed block (see the module docstring): ``peak_bytes``, ``start_bytes``, ``kind``."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = "cuda_max_memory_allocated" if device.type == "cuda" else "cpu_rss_growth"
        self.start_bytes: int | None = None
        self.peak_bytes: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> MemoryMeter:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_bytes = torch.cuda.memory_allocated(self.device)
        elif STATM.exists():
            _malloc_trim()
            self.start_bytes = _rss()
            self._rss_peak = self.start_bytes
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        elif self._thread is not None and self.start_bytes is not None:
            self._stop.set()
            self._thread.join()
            self.peak_bytes = max(self._rss_peak, _rss()) - self.start_bytes

    def _sample(self) -> None:
        while not self._stop.wait(RSS_INTERVAL_S):
            self._rss_peak = max(self._rss_peak, _rss())


def forward_throughput(generator: Callable[[Tensor], Tensor], latents: Tensor, *, batches: tuple[int, ...],
                       precision: Precision, repeats: int = 3, max_seconds: float = 10.0) -> dict[int, float]:
    """Latents per second of a plain ``generator(z)`` under ``torch.no_grad`` in ``precision``, per batch size.

    The generator runs as the products do (:func:`~gendebias.geometry.precision.lowered` under
    :func:`~gendebias.geometry.precision.precision_mode`: bf16 weights and autocast for ``bf16``, TF32 flags for
    ``tf32``). ``latents`` must hold at least ``max(batches)`` rows; a batch that runs out of device memory is left
    out.
    """
    rates: dict[int, float] = {}
    device = latents.device
    generator = lowered(generator, precision)
    for batch in batches:
        chunk = latents[:batch]
        try:
            with torch.no_grad(), precision_mode(precision, device):
                generator(chunk[: max(1, batch // 4)])  # warm-up
                seconds, _, _ = best_time(partial(generator, chunk), device=device, repeats=repeats,
                                          max_seconds=max_seconds)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            continue
        rates[batch] = batch / seconds
    return rates


def autograd_functional_log_volume(generator: Callable[[Tensor], Tensor], latents: Tensor) -> Tensor:
    """``(N,)`` float64 log-volumes the per-sample way: a Python loop over latents, each
    ``torch.autograd.functional.jacobian`` (default: reverse mode, one ``autograd.grad`` per output element,
    ``D`` backward passes), then the same float64 Cholesky/SVD as the exact method."""
    values = []
    for latent in latents:
        def function(flat: Tensor, shape: torch.Size = latent.shape) -> Tensor:
            return generator(flat.reshape(1, *shape)).reshape(-1)

        matrix = torch.autograd.functional.jacobian(function, latent.reshape(-1))
        values.append(log_volume_from_jacobians(matrix[None]))
    return torch.cat(values)


def autograd_functional_seconds(generator: Callable[[Tensor], Tensor], latent: Tensor, *, rows: int) -> float:
    """Predicted seconds of :func:`autograd_functional_log_volume` on one latent: one forward pass plus
    ``D`` times the mean time of ``rows`` of the ``autograd.grad`` calls it makes (timed after 8 warm-up calls)."""
    device = latent.device
    flat = latent.reshape(-1).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        synchronize(device)
        start = time.perf_counter()
        output = generator(flat.reshape(1, *latent.shape)).reshape(-1)
        synchronize(device)
        forward = time.perf_counter() - start
        for row in range(8):
            torch.autograd.grad(output[row], flat, retain_graph=True)
        rows = min(rows, output.numel())
        synchronize(device)
        start = time.perf_counter()
        for row in range(rows):
            torch.autograd.grad(output[row], flat, retain_graph=True)
        synchronize(device)
        per_row = (time.perf_counter() - start) / rows
    return forward + output.numel() * per_row


def accuracy(values: Tensor, reference: Tensor) -> dict[str, float | int | None]:
    """Errors in nats of ``values`` against ``reference`` (both ``(N,)``), over latents finite in both, and the
    Spearman rank correlation (None below 3 latents). ``nonfinite_mismatches``: latents finite in one only."""
    values, reference = values.double().cpu(), reference.double().cpu()
    finite = torch.isfinite(values) & torch.isfinite(reference)
    mismatches = int((torch.isfinite(values) ^ torch.isfinite(reference)).sum())
    if not bool(finite.any()):
        return {"mean_abs_error_nats": None, "max_abs_error_nats": None, "spearman": None,
                "nonfinite_mismatches": mismatches}
    error = (values[finite] - reference[finite]).abs()
    return {"mean_abs_error_nats": float(error.mean()), "max_abs_error_nats": float(error.max()),
            "spearman": spearman(values[finite], reference[finite]), "nonfinite_mismatches": mismatches}


def spearman(first: Tensor, second: Tensor) -> float | None:
    """Spearman's rho of two ``(N,)`` samples: Pearson correlation of their ranks (ties broken by order)."""
    if first.shape[0] < 3:
        return None
    ranks = [sample.argsort().argsort().double() for sample in (first, second)]
    centred = [rank - rank.mean() for rank in ranks]
    denominator = float(centred[0].norm() * centred[1].norm())
    return float((centred[0] * centred[1]).sum()) / denominator if denominator else None


def _malloc_trim() -> None:
    """Hand glibc's free heap memory back to the system (no-op elsewhere)."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _rss() -> int:
    return int(STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
