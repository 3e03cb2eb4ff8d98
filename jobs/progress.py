"""Progress of a job: a bar on a terminal, one plain log line per shard otherwise (shards, latents/s, ETA)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``advance(rows)`` after each shard this run finishes; ``done`` counts shards a previous run finished too."""

    def __init__(self, *, shards: int, done: int, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.shards, self.done, self.enabled = shards, done, enabled
        self.stream = stream or sys.stderr
        self.finished_here = 0
        self.rows_here = 0
        self.started = time.monotonic()

    def advance(self, rows: int) -> None:
        self.done += 1
        self.finished_here += 1
        self.rows_here += rows
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        eta = (self.shards - self.done) * elapsed / self.finished_here
        line = f"shards {self.done}/{self.shards}  {self.rows_here / elapsed:,.0f} latents/s  ETA {eta:,.0f} s"
        if self.stream.isatty():
            filled = int(30 * self.done / self.shards)
            end = "\n" if self.done == self.shards else ""
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {line}{end}")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
