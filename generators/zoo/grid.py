"""Sample grids as grayscale PNG files, written with ``zlib`` and ``struct`` only (no Pillow, no matplotlib).

Layout: ``columns`` tiles per row (fewer if there are fewer images), ``ceil(N / columns)`` rows; every tile is the
image upscaled ``scale`` times by pixel repetition; tiles are separated and framed by 1-pixel gray (128) lines.
A grid of ``N`` images of size ``H x W`` is therefore ``c * W * scale + c + 1`` pixels wide and
``r * H * scale + r + 1`` pixels high, with ``c = min(N, columns)`` and ``r = ceil(N / c)``.
"""

from __future__ import annotations

import math
import os
import struct
import zlib

import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GAP_VALUE = 128
"""Gray level of the 1-pixel lines between tiles (pixels map ``-1 -> 0`` and ``1 -> 255``)."""


def grid_size(count: int, height: int, width: int, *, columns: int = 16, scale: int = 4) -> tuple[int, int]:
    """``(grid_width, grid_height)`` in pixels of a grid of ``count`` images of size ``height x width``."""
    used_columns = min(count, columns)
    rows = math.ceil(count / used_columns)
    return used_columns * (width * scale + 1) + 1, rows * (height * scale + 1) + 1


def grid_pixels(images: Tensor, *, columns: int = 16, scale: int = 4) -> Tensor:
    """``(N, 1, H, W)`` images in ``[-1, 1]`` -> ``(grid_height, grid_width)`` uint8 grid (values clamped first)."""
    _check(images, columns=columns, scale=scale)
    count, _, height, width = images.shape
    grid_width, grid_height = grid_size(count, height, width, columns=columns, scale=scale)
    levels = ((images.detach().float().cpu().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    tiles = levels[:, 0].repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    grid = torch.full((grid_height, grid_width), GAP_VALUE, dtype=torch.uint8)
    used_columns = min(count, columns)
    for index in range(count):
        row, column = divmod(index, used_columns)
        top = 1 + row * (height * scale + 1)
        left = 1 + column * (width * scale + 1)
        grid[top : top + height * scale, left : left + width * scale] = tiles[index]
    return grid


def write_png_grid(images: Tensor, path: str | os.PathLike[str], *, columns: int = 16, scale: int = 4) -> None:
    """Write ``(N, 1, H, W)`` images in ``[-1, 1]`` to ``path`` as an 8-bit grayscale PNG grid (see module doc)."""
    grid = grid_pixels(images, columns=columns, scale=scale)
    height, width = grid.shape
    rows = b"".join(b"\x00" + bytes(grid[row].tolist()) for row in range(height))  # filter type 0 (None) per row
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit, grayscale, deflate, no interlace
    png = PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, 9)) + _chunk(b"IEND", b"")
    with open(path, "wb") as handle:
        handle.write(png)


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _check(images: Tensor, *, columns: int, scale: int) -> None:
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 1 or images.shape[0] == 0:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise InvalidArgumentError(
            f"images must be a non-empty tensor of shape (N, 1, H, W), got {shape}; "
            "reshape flat outputs with images.reshape(-1, 1, H, W)"
        )
    if columns < 1 or scale < 1:
        raise InvalidArgumentError(f"columns and scale must be positive integers, got columns={columns}, scale={scale}")
