"""Array files of the command line: ``.npy`` and ``.safetensors`` in and out (numpy only, no torch).

Input latents are the array of a ``.npy`` file, or the tensor named ``latents`` of a ``.safetensors`` file. Output
writes the command's main array to a ``.npy`` file, or all its named arrays to a ``.safetensors`` file. Every
failure (missing file, unreadable content, unknown suffix) is an ``InvalidArgumentError`` whose message names the
file and says what to do. ``.npy`` needs numpy only; ``safetensors`` (the ``library`` extra) is imported only for a
``.safetensors`` file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from gendebias.errors import InvalidArgumentError

SUFFIXES = (".npy", ".safetensors")
LATENTS_KEY = "latents"


def check_suffix(path: Path) -> Path:
    """``path`` itself if it ends in ``.npy`` or ``.safetensors`` (checked before any work is done)."""
    if path.suffix not in SUFFIXES:
        raise InvalidArgumentError(f"{path}: unknown file type {path.suffix or '(none)'!r}; use .npy or .safetensors")
    return path


def read_latents(path: Path) -> np.ndarray:
    """The latents stored in ``path`` (``.npy`` array, or the ``latents`` tensor of a ``.safetensors`` file)."""
    check_suffix(path)
    if not path.is_file():
        raise InvalidArgumentError(f"no such file: {path}")
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise InvalidArgumentError(f"cannot read {path}: {error}") from None
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(path)
    except (OSError, ValueError, SafetensorError) as error:
        raise InvalidArgumentError(f"cannot read {path}: {error}") from None
    if LATENTS_KEY not in tensors:
        raise InvalidArgumentError(f"{path} has no tensor named {LATENTS_KEY!r} (it has {sorted(tensors)}); "
                                   f"save the latents under the key {LATENTS_KEY!r}")
    return tensors[LATENTS_KEY]


def write_arrays(path: Path, arrays: Mapping[str, np.ndarray | None], *, main: str) -> None:
    """Write ``arrays[main]`` to a ``.npy`` file, or every array that is not None to a ``.safetensors`` file."""
    check_suffix(path)
    if path.suffix == ".npy":
        try:
            np.save(path, np.asarray(arrays[main]))
        except OSError as error:
            raise InvalidArgumentError(f"cannot write {path}: {error}") from None
        return
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    try:
        save_file({name: np.ascontiguousarray(array) for name, array in arrays.items() if array is not None},
                  str(path))
    except (OSError, SafetensorError) as error:
        raise InvalidArgumentError(f"cannot write {path}: {error}") from None
