"""Reading latents from ``.npy``, ``.safetensors`` and ``.parquet`` files one shard at a time (bounded memory).

``.npy`` is memory-mapped, ``.safetensors`` sliced with ``safe_open(...).get_slice("latents")``, ``.parquet``
read row group by row group from a ``latents`` list column. :func:`open_latents` checks the file before any work:
readable, floating, ``(N, *latent_shape)`` for the generator, and no NaN/Inf row (scanned in chunks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gendebias.errors import InvalidArgumentError, InvalidLatentsError

SCAN_ROWS = 65_536


@dataclass(frozen=True)
class LatentFile:
    path: Path
    rows: int
    latent_shape: tuple[int, ...]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as a float array ``(stop - start, *latent_shape)``."""
        return _READERS[self.path.suffix](self.path, start, stop).reshape(stop - start, *self.latent_shape)


def open_latents(path: str | Path, latent_shape: tuple[int, ...]) -> LatentFile:
    """Check ``path`` for a generator with ``latent_shape`` and return a shard reader; refuse bad files early."""
    path = Path(path)
    if path.suffix not in _SHAPES:
        raise InvalidArgumentError(f"{path}: latents must be .npy, .safetensors or .parquet", field="latents")
    if not path.is_file():
        raise InvalidArgumentError(f"{path}: no such file", field="latents")
    try:
        shape, kind = _SHAPES[path.suffix](path)
    except Exception as error:  # any parse failure of the user's file is the same mistake for them
        raise InvalidArgumentError(f"{path}: cannot read latents ({type(error).__name__}: {error})",
                                   field="latents") from None
    if kind != "f":
        raise InvalidLatentsError(f"{path}: latents must be float32 or float64", field="latents")
    if len(shape) < 2 or tuple(shape[1:]) != tuple(latent_shape):
        raise InvalidLatentsError(f"{path}: latents have shape {list(shape)} but the generator takes "
                                  f"(N, {', '.join(map(str, latent_shape))})", field="latents")
    file = LatentFile(path, int(shape[0]), tuple(latent_shape))
    _check_finite(file)
    return file


def _check_finite(file: LatentFile) -> None:
    for start in range(0, file.rows, SCAN_ROWS):
        stop = min(file.rows, start + SCAN_ROWS)
        rows = file.read(start, stop).reshape(stop - start, -1)
        bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
        if bad.size:
            raise InvalidLatentsError(f"{file.path}: rows {(bad[:10] + start).tolist()} hold NaN or infinite "
                                      "values; drop or fix them before running the job", field="latents")


def _npy_shape(path: Path) -> tuple[tuple[int, ...], str]:
    array = np.load(path, mmap_mode="r")
    return array.shape, array.dtype.kind


def _npy_read(path: Path, start: int, stop: int) -> np.ndarray:
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def _safetensors_shape(path: Path) -> tuple[tuple[int, ...], str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        if "latents" not in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
            raise KeyError(f"no 'latents' tensor (found {list(handle.keys())})")
        view = handle.get_slice("latents")
        return tuple(view.get_shape()), "f" if view.get_dtype().startswith(("F", "BF")) else "i"


def _safetensors_read(path: Path, start: int, stop: int) -> np.ndarray:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        return np.asarray(handle.get_slice("latents")[start:stop])


def _parquet_shape(path: Path) -> tuple[tuple[int, ...], str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    column = parquet.schema_arrow.field("latents").type
    if not pa.types.is_fixed_size_list(column):
        raise TypeError("the 'latents' column must be a fixed-size list of floats")
    kind = "f" if pa.types.is_floating(column.value_type) else "i"
    return (parquet.metadata.num_rows, column.list_size), kind


def _parquet_read(path: Path, start: int, stop: int) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    groups, first, offset = [], None, 0
    for index in range(parquet.num_row_groups):
        rows = parquet.metadata.row_group(index).num_rows
        if offset + rows > start and offset < stop:
            groups.append(index)
            first = offset if first is None else first
        offset += rows
    table = parquet.read_row_groups(groups, columns=["latents"]).slice(start - (first or 0), stop - start)
    column = table.column("latents").combine_chunks()
    assert isinstance(column, pa.FixedSizeListArray)
    return column.values.to_numpy(zero_copy_only=False).reshape(stop - start, -1).copy()  # writable, as torch wants


_SHAPES = {".npy": _npy_shape, ".safetensors": _safetensors_shape, ".parquet": _parquet_shape}
_READERS = {".npy": _npy_read, ".safetensors": _safetensors_read, ".parquet": _parquet_read}


def shard_count(rows: int, shard_size: int) -> int:
    return max(1, math.ceil(rows / shard_size))
