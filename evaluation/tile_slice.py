"""A 2-D slice of latent space, seen through tile codes and log-volumes.

The plane ``z(u, v) = origin + u a + v b`` (``a``, ``b`` two directions) is sampled on a regular grid; each grid
point gets its tile code (:func:`gendebias.geometry.tile_codes`: the generator's activation pattern, hashed) and its
log-volume. On a continuous piecewise-affine generator the tiles are convex polytopes whose facets lie on the
hyperplanes where a pre-activation changes sign (Balestriero and Baraniuk, "A Spline Theory of Deep Learning",
ICML 2018; MaGNET §2); the slice cuts them into convex polygons. :func:`tile_boundaries` marks the grid points
whose code differs from their right or upper neighbour's: a boundary that passes between two neighbouring grid
points is then at most one grid step from the marked one, which is how the tests check the slice against the toys'
known breakpoints (:mod:`gendebias.generators.toys`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError
from gendebias.geometry import log_volume, tile_codes
from gendebias.geometry._inputs import GeneratorLike


class LatentSlice(NamedTuple):
    """A sampled 2-D slice; grid point ``[i, j]`` is ``origin + u[j] a + v[i] b``."""

    u: Tensor
    """``(W,)`` float64 coordinates along the first direction ``a``."""
    v: Tensor
    """``(H,)`` float64 coordinates along the second direction ``b``."""
    codes: Tensor
    """``(H, W)`` int64 tile codes."""
    log_volumes: Tensor
    """``(H, W)`` float64 log-volumes (``-inf`` where ``J`` is rank-deficient)."""


def latent_slice(generator: GeneratorLike, origin: Tensor, directions: Tensor, *,
                 extent: tuple[float, float, float, float] = (-1.0, 1.0, -1.0, 1.0),
                 resolution: tuple[int, int] = (101, 101), chunk_size: int | None = None) -> LatentSlice:
    """Tile codes and log-volumes on the grid ``origin + u a + v b``.

    Args:
        generator: a ``Generator`` or callable ``(N, *latent_shape) -> (N, *output_shape)``.
        origin: ``(*latent_shape)`` latent at ``u = v = 0`` (its dtype and device are the grid's).
        directions: ``(2, *latent_shape)`` the directions ``a`` and ``b`` (not normalised here: a unit of ``u`` is
            one ``a``).
        extent: ``(u_min, u_max, v_min, v_max)``.
        resolution: ``(H, W)`` grid points along ``v`` and ``u``, each at least 2.
        chunk_size: latents per pass for the tile codes and the log-volumes (None: their defaults).

    Returns:
        :class:`LatentSlice`.
    """
    if directions.shape != (2, *origin.shape):
        raise InvalidArgumentError(f"directions must have shape (2, *origin.shape) = {(2, *origin.shape)}, got "
                                   f"{tuple(directions.shape)}")
    height, width = (int(size) for size in resolution)
    if height < 2 or width < 2:
        raise InvalidArgumentError(f"resolution needs at least 2 x 2 grid points, got {resolution}")
    u_min, u_max, v_min, v_max = (float(value) for value in extent)
    if not (u_min < u_max and v_min < v_max):
        raise InvalidArgumentError(f"extent must be (u_min, u_max, v_min, v_max) with min < max, got {extent}")
    u = torch.linspace(u_min, u_max, width, dtype=torch.float64)
    v = torch.linspace(v_min, v_max, height, dtype=torch.float64)
    grid_v, grid_u = torch.meshgrid(v, u, indexing="ij")
    shape = (-1, *([1] * origin.ndim))
    a, b = directions.to(origin)
    latents = origin + grid_u.reshape(shape).to(origin) * a + grid_v.reshape(shape).to(origin) * b
    codes = tile_codes(generator, latents, chunk_size=chunk_size).cpu().reshape(height, width)
    volumes = log_volume(generator, latents, chunk_size=chunk_size).detach().to(torch.float64).cpu()
    return LatentSlice(u, v, codes, volumes.reshape(height, width))


def tile_boundaries(codes: Tensor) -> Tensor:
    """``(H, W)`` bool: True at grid point ``[i, j]`` when its code differs from ``[i, j + 1]`` or ``[i + 1, j]``.

    A tile boundary crossing the segment between two neighbouring grid points marks the first of them, so every
    marked point lies within one grid step of a boundary and every boundary crossing the grid is marked.
    """
    if codes.ndim != 2:
        raise InvalidArgumentError(f"codes must be an (H, W) image of tile codes, got shape {tuple(codes.shape)}")
    marked = torch.zeros(codes.shape, dtype=torch.bool, device=codes.device)
    marked[:, :-1] |= codes[:, :-1] != codes[:, 1:]
    marked[:-1, :] |= codes[:-1, :] != codes[1:, :]
    return marked
