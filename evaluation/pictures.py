"""Pictures a person would rather look at than read: labelled sample grids at their true aspect ratio and the class
histograms they produce (matplotlib on the Agg canvas, PNG, no display needed).

* :func:`grid_image` tiles ``(N, C, H, W)`` images into one array, each image keeping its own aspect ratio.
* :func:`class_histograms` draws each method's class shares side by side, with the uniform share as a line.
* :func:`before_after` puts each method's grid (titled by :func:`panel_title`: method, rho, ESS, distinct count) and
  the class histograms into one figure.

Other pictures live beside this module: :mod:`~gendebias.evaluation.volume_picture` (log-volumes and importance
weights), :mod:`~gendebias.evaluation.tradeoff_picture` (precision and recall over ``rho`` against truncation) and
:mod:`~gendebias.evaluation.tile_picture` (a 2-D latent slice coloured by tile code). ``docs/evaluation.md#pictures``
shows what each one is for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError
from gendebias.evaluation._figure import DPI, new_figure, save


@dataclass(frozen=True)
class Panel:
    """One method's samples: a ``title`` (method, rho, ESS, distinct count...; see :func:`panel_title`), ``images``
    ``(N, C, H, W)`` in ``[-1, 1]`` and its class ``histogram`` ``(K,)`` (counts or shares)."""

    title: str
    images: Tensor
    histogram: Tensor


def panel_title(method: str, *, rho: float, ess: float, distinct: int, count: int, details: str = "") -> str:
    """A grid's two-line title: ``method, rho = ...`` then ``ESS ... of count, ... distinct`` and ``details``."""
    second = f"ESS {ess:,.0f} of {count:,}, {distinct:,} distinct"
    return f"{method}, rho = {rho:g}\n{second}{', ' + details if details else ''}"


def grid_image(images: Tensor, columns: int = 8) -> np.ndarray:
    """``(rows * (H + 1) - 1, columns * (W + 1) - 1)`` grayscale or ``(..., 3)`` RGB array in ``[0, 1]``, one
    pixel of white between tiles; images keep their own aspect ratio."""
    images = images.detach().to(torch.float32).cpu().clamp(-1, 1)
    count, channels, height, width = images.shape
    rows = -(-count // columns)
    canvas = torch.ones(channels, rows * (height + 1) - 1, columns * (width + 1) - 1)
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = row * (height + 1), column * (width + 1)
        canvas[:, top:top + height, left:left + width] = (images[index] + 1) / 2
    array = canvas.permute(1, 2, 0).numpy()
    return array[..., 0] if channels == 1 else array


def class_histograms(histograms: Mapping[str, Any], path: str | Path, *, classes: list[str] | None = None,
                     title: str = "class histograms") -> Path:
    """Write a grouped bar chart of each method's class shares (``{method: (K,) counts or shares}``, naive first by
    convention) with the uniform share ``1 / K`` as a dashed line. Returns the path."""
    figure = new_figure(1.2 + 0.45 * len(_labels(histograms, classes)) * max(1, len(histograms)) ** 0.5, 4.2)
    _draw_class_bars(figure.subplots(), histograms, classes)
    return save(figure, path, title=title)


def before_after(panels: list[Panel], path: str | Path, *, classes: list[str] | None = None,
                 suptitle: str = "", columns: int = 8, count: int = 64) -> Path:
    """Write one labelled figure: each panel's first ``count`` samples as a grid (titled), then a grouped bar chart of
    every panel's class shares. Returns the path."""
    if not panels:
        raise InvalidArgumentError("before_after needs at least one panel")
    shown = grid_image(panels[0].images[:count], columns)
    side = max(4.2, 1.15 * max(shown.shape[:2]) / DPI)  # large images (64 x 64 faces) get a pixel per pixel
    figure = new_figure(side * (len(panels) + 1.4), side + 0.6)
    axes = figure.subplots(1, len(panels) + 1, gridspec_kw={"width_ratios": [1] * len(panels) + [1.4]})
    for axis, panel in zip(axes, panels, strict=False):
        axis.imshow(grid_image(panel.images[:count], columns), cmap="gray", vmin=0, vmax=1, aspect="equal",
                    interpolation="nearest")
        axis.set_title(panel.title, fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    _draw_class_bars(axes[-1], {panel.title.splitlines()[0]: panel.histogram for panel in panels}, classes)
    return save(figure, path, title=suptitle)


def _labels(histograms: Mapping[str, Any], classes: list[str] | None) -> list[str]:
    if not histograms:
        raise InvalidArgumentError("class histograms need at least one {method: histogram} entry")
    sizes = {torch.as_tensor(np.asarray(counts)).numel() for counts in histograms.values()}
    if len(sizes) != 1:
        raise InvalidArgumentError(f"every histogram must have the same number of classes, got sizes {sorted(sizes)}")
    size = sizes.pop()
    if classes is not None and len(classes) != size:
        raise InvalidArgumentError(f"classes has {len(classes)} names but the histograms have {size} classes")
    return classes or [str(k) for k in range(size)]


def _draw_class_bars(axis: Any, histograms: Mapping[str, Any], classes: list[str] | None) -> None:
    """Grouped bars of class shares on ``axis``, one colour per method, and the uniform line."""
    labels = _labels(histograms, classes)
    width = 0.8 / len(histograms)
    for offset, (name, counts) in enumerate(histograms.items()):
        values = torch.as_tensor(np.asarray(counts), dtype=torch.float64).flatten()
        if bool((values < 0).any()) or float(values.sum()) <= 0:
            raise InvalidArgumentError(f"histogram {name!r} must hold non-negative counts with a positive sum")
        positions = np.arange(len(labels)) + (offset - (len(histograms) - 1) / 2) * width
        axis.bar(positions, (values / values.sum()).numpy(), width=width, label=name)
    axis.axhline(1 / len(labels), color="black", linewidth=0.8, linestyle="--", label=f"uniform (1/{len(labels)})")
    axis.set_xticks(np.arange(len(labels)), labels)
    axis.set_xlabel("class (labelled by the classifier)")
    axis.set_ylabel("share of samples")
    axis.set_title("class histogram", fontsize=9)
    axis.legend(fontsize=7)
