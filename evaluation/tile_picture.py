"""A 2-D latent slice coloured by tile code and shaded by log-volume, its tile boundaries drawn in black.

Each tile (one activation pattern, :mod:`gendebias.evaluation.tile_slice`) gets its own hue; brightness follows the
log-volume (dark: the generator compresses there, so naive sampling over-samples it; bright: it stretches). The
black pixels are :func:`~gendebias.evaluation.tile_slice.tile_boundaries`, so what is drawn is exactly what the
tests compare with the toys' known hyperplanes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from gendebias.evaluation._figure import new_figure, save
from gendebias.evaluation.tile_slice import LatentSlice, tile_boundaries

GOLDEN = (math.sqrt(5) - 1) / 2
"""Hue step between consecutive tiles: neighbouring indices get far-apart hues."""


def tile_colours(piece: LatentSlice) -> np.ndarray:
    """``(H, W, 3)`` RGB in ``[0, 1]``: hue from the tile's index among the slice's distinct codes, brightness
    ``0.35 + 0.65 s`` with ``s`` the log-volume scaled to ``[0, 1]`` over the slice's finite values (``-inf``:
    black), boundaries black."""
    from matplotlib.colors import hsv_to_rgb

    _, index = torch.unique(piece.codes, return_inverse=True)
    hue = (index.double() * GOLDEN) % 1.0
    volumes = piece.log_volumes
    finite = torch.isfinite(volumes)
    low, high = (float(volumes[finite].min()), float(volumes[finite].max())) if bool(finite.any()) else (0.0, 0.0)
    scaled = ((volumes - low) / (high - low)) if high > low else torch.ones_like(volumes)
    value = torch.where(finite, 0.35 + 0.65 * scaled, torch.zeros_like(volumes))
    value = torch.where(tile_boundaries(piece.codes), torch.zeros_like(value), value)
    hsv = torch.stack([hue, torch.full_like(hue, 0.55), value], dim=-1).numpy()
    return np.asarray(hsv_to_rgb(hsv))


def tile_slice_picture(piece: LatentSlice, path: str | Path, *, axis_names: Sequence[str] = ("u", "v"),
                       title: str = "latent slice: tiles and log-volumes") -> Path:
    """Write the slice as an image in latent coordinates (``u`` across, ``v`` up) with a colour bar for the
    log-volume shading; the title gives the number of tiles the slice crosses. Returns the path."""
    figure = new_figure(6.0, 5.0)
    axis = figure.subplots()
    extent = (float(piece.u[0]), float(piece.u[-1]), float(piece.v[0]), float(piece.v[-1]))
    axis.imshow(tile_colours(piece), origin="lower", extent=extent, aspect="equal", interpolation="nearest")
    finite = piece.log_volumes[torch.isfinite(piece.log_volumes)]
    if finite.numel():
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import LinearSegmentedColormap, Normalize

        brightness = LinearSegmentedColormap.from_list("brightness", [(0.35, 0.35, 0.35), (1.0, 1.0, 1.0)])
        shading = ScalarMappable(Normalize(float(finite.min()), float(finite.max())), cmap=brightness)
        figure.colorbar(shading, ax=axis, label="log-volume (brightness)")
    tiles = int(torch.unique(piece.codes).numel())
    axis.set_xlabel(axis_names[0])
    axis.set_ylabel(axis_names[1])
    axis.set_title(f"{tiles} tiles (hue per tile code), boundaries in black", fontsize=9)
    return save(figure, path, title=title)
