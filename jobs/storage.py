"""The output folder of a job: its spec, one Parquet file and one sidecar per finished shard, a manifest.

Layout: ``job.json`` (what the job is; written first), ``shards/shard-00007.parquet`` plus
``shards/shard-00007.json`` (rows, sha256 of the Parquet bytes and per-shard sums), ``manifest.json`` (every shard's
entry, written when all are done) and ``summary.json``. Every file is written to a temporary name and renamed, so a
crash or ``kill -9`` leaves either the whole file or nothing. A shard counts as finished only when its sidecar exists
and the Parquet file's sha256 matches it; a re-run skips finished shards and recomputes the rest. No timestamps are
stored, and a resumed run deletes the temporary files a killed one left: an interrupted and resumed run ends with
the same files, byte for byte, as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gendebias.errors import InvalidArgumentError
from gendebias.generators.spec import sha256_of

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync and rename."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are shared like any written file
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    atomic_write(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", write_statistics=False)
    return bytes(sink.getvalue().to_pybytes())


class JobFolder:
    """One job's output folder. :meth:`claim` checks it can be written and holds this job (or nothing)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.shards = self.root / "shards"

    def claim(self, spec: dict[str, Any]) -> None:
        """Create the folder (or resume it): refuse an unwritable folder or one holding a different job."""
        try:
            self.shards.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-probe"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise InvalidArgumentError(f"output folder {self.root} is not writable: {error.strerror}",
                                       field="out") from None
        existing = self.root / "job.json"
        if existing.exists():
            previous = read_json(existing)
            if previous != spec:
                changed = sorted(key for key in set(previous) | set(spec) if previous.get(key) != spec.get(key))
                raise InvalidArgumentError(
                    f"{self.root} holds a different job (differs in {changed}: e.g. generator "
                    f"{previous.get('generator_id')!r}); use another --out or delete that folder", field="out")
        else:
            write_json(existing, spec)
        for stale in (*self.root.glob(".*.tmp"), *self.shards.glob(".*.tmp")):
            stale.unlink()  # a write that a crash interrupted; its shard is recomputed

    def shard_path(self, index: int) -> Path:
        return self.shards / f"shard-{index:05d}.parquet"

    def finished(self, index: int) -> dict[str, Any] | None:
        """The sidecar of a finished, intact shard, else None."""
        sidecar = self.shard_path(index).with_suffix(".json")
        if not sidecar.exists() or not self.shard_path(index).exists():
            return None
        entry: dict[str, Any] = read_json(sidecar)
        return entry if sha256_of(self.shard_path(index)) == entry["sha256"] else None

    def write_shard(self, index: int, table: pa.Table, extra: dict[str, Any]) -> dict[str, Any]:
        data = parquet_bytes(table)
        atomic_write(self.shard_path(index), data)
        entry = {"shard": index, "file": self.shard_path(index).name, "rows": table.num_rows,
                 "sha256": hashlib.sha256(data).hexdigest(), **extra}
        write_json(self.shard_path(index).with_suffix(".json"), entry)
        return entry
