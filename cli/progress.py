"""A one-line progress display for long samplers: tempering level, evaluations, elapsed time (on stderr)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from gendebias.clients import ResampleProgress


class SamplerProgress:
    """``with SamplerProgress() as shown: client.resample(..., progress=shown.update)``: redraws one line on a
    terminal (or prints one line per report elsewhere, at most every few seconds), then ends it."""

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None, every: float = 2.0) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.every = every
        self._drawn = False
        self._last = -float("inf")

    def __enter__(self) -> SamplerProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._drawn and self.stream.isatty():
            self.stream.write("\n")
            self.stream.flush()

    def update(self, progress: ResampleProgress) -> None:
        if not self.enabled:
            return
        line = line_of(progress)
        if self.stream.isatty():
            self.stream.write(f"\r{line}\033[K")
        elif time.monotonic() - self._last >= self.every:
            self.stream.write(f"{line}\n")
            self._last = time.monotonic()
        else:
            return
        self._drawn = True
        self.stream.flush()


def line_of(progress: ResampleProgress) -> str:
    filled = round(20 * min(max(progress.beta, 0.0), 1.0))
    bar = "#" * filled + "." * (20 - filled)
    what = {"smc": "tempering step", "mcmc": "kept sweep", "sir": "pool"}.get(progress.sampler, "step")
    return (f"{progress.sampler:<5} [{bar}] beta {progress.beta:.3f}  {what} {progress.step}  "
            f"{progress.evaluations:,} evaluations  {progress.seconds:.1f} s")
