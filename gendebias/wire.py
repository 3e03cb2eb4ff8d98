"""Tensors on the wire: numpy arrays <-> ``gendebias.v1.Tensor``, shared by the service and the SDK.

The contract is ``docs/design.md#wire-contract``.

A ``Tensor`` is ``{dtype, shape, data}`` with row-major little-endian raw bytes. :func:`from_tensor` checks the
dtype, the shape (non-negative sizes, overflow-safe element count under a limit) and that
``len(data) == prod(shape) * itemsize`` *before* it makes an array, and the array it returns is a read-only
view of the message's bytes (no copy). Nothing here imports torch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gendebias.errors import InvalidTensorError, LimitExceededError, shown
from gendebias.v1 import tensor_pb2

DTYPES: dict[int, np.dtype[Any]] = {
    tensor_pb2.DATA_TYPE_FLOAT32: np.dtype("<f4"),
    tensor_pb2.DATA_TYPE_FLOAT64: np.dtype("<f8"),
    tensor_pb2.DATA_TYPE_INT64: np.dtype("<i8"),
}
_CODES = {dtype: code for code, dtype in DTYPES.items()}
MAX_RANK = 8
MAX_SPAN_BYTES = 1 << 62  # what any shape may span with its zero sizes read as 1 (numpy's own limit is 2**63)


def to_tensor(array: np.ndarray) -> tensor_pb2.Tensor:
    """A ``Tensor`` message holding ``array`` (float32, float64 or int64; converted to little-endian, C order)."""
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder("<")
    if dtype not in _CODES:
        raise InvalidTensorError(f"cannot send arrays of dtype {array.dtype}; use float32, float64 or int64")
    data = np.ascontiguousarray(array, dtype=dtype).tobytes()
    return tensor_pb2.Tensor(dtype=_CODES[dtype], shape=list(array.shape), data=data)


def from_tensor(tensor: tensor_pb2.Tensor, *, field: str, max_elements: int | None = None) -> np.ndarray:
    """The array a ``Tensor`` message holds, after every check that can fail without allocating.

    Raises ``InvalidTensorError`` (dtype, shape, byte length) or ``LimitExceededError`` (more than ``max_elements``
    elements); both name ``field``.
    """
    if tensor.dtype not in DTYPES:
        raise InvalidTensorError(f"{field}: unknown dtype {tensor.dtype}; use FLOAT32, FLOAT64 or INT64", field=field)
    shape = tuple(tensor.shape)
    if len(shape) > MAX_RANK or any(size < 0 for size in shape):
        raise InvalidTensorError(f"{field}: shape {shown(list(shape))} must have at most {MAX_RANK} non-negative sizes",
                                 field=field)
    dtype = DTYPES[tensor.dtype]
    if math.prod(max(size, 1) for size in shape) * dtype.itemsize > MAX_SPAN_BYTES:
        raise InvalidTensorError(f"{field}: shape {list(shape)} spans more than 2**62 bytes, even if empty",
                                 field=field)  # numpy refuses such a shape even with a zero in it
    count = math.prod(shape)  # exact integer arithmetic: a huge declared shape cannot overflow
    if max_elements is not None and count > max_elements:
        raise LimitExceededError(f"{field}: {count} elements exceed this server's limit of {max_elements}",
                                 field=field)
    if len(tensor.data) != count * dtype.itemsize:
        raise InvalidTensorError(f"{field}: shape {list(shape)} of {dtype.name} needs {count * dtype.itemsize} bytes, "
                                 f"got {len(tensor.data)}", field=field)
    return np.frombuffer(tensor.data, dtype=dtype).reshape(shape)
