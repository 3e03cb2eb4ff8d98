"""Pictures a person would rather look at than read: labelled sample grids at their true aspect ratio, side by side
with the class histograms they produce (matplotlib, PNG, no display needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Panel:
    """One method's samples: a ``title`` (method, rho, ESS, distinct count...), ``images`` ``(N, C, H, W)`` in
    ``[-1, 1]`` and its class ``histogram`` ``(K,)`` (counts or shares)."""

    title: str
    images: Tensor
    histogram: Tensor


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


def before_after(panels: list[Panel], path: str | Path, *, classes: list[str] | None = None,
                 suptitle: str = "", columns: int = 8, count: int = 64) -> Path:
    """Write one labelled figure: each panel's first ``count`` samples as a grid (titled), then a grouped bar chart of
    every panel's class shares. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels) + 1, figsize=(4.2 * (len(panels) + 1.4), 4.8),
                                gridspec_kw={"width_ratios": [1] * len(panels) + [1.4]})
    for axis, panel in zip(axes, panels, strict=False):
        axis.imshow(grid_image(panel.images[:count], columns), cmap="gray", vmin=0, vmax=1, aspect="equal",
                    interpolation="nearest")
        axis.set_title(panel.title, fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    bars = axes[-1]
    labels = classes or [str(k) for k in range(panels[0].histogram.shape[0])]
    width = 0.8 / len(panels)
    for offset, panel in enumerate(panels):
        shares = (panel.histogram.double() / panel.histogram.double().sum()).numpy()
        positions = np.arange(len(labels)) + (offset - (len(panels) - 1) / 2) * width
        bars.bar(positions, shares, width=width, label=panel.title.splitlines()[0])
    bars.axhline(1 / len(labels), color="black", linewidth=0.8, linestyle="--", label="uniform")
    bars.set_xticks(np.arange(len(labels)), labels)
    bars.set_xlabel("class (labelled by the classifier)")
    bars.set_ylabel("share of samples")
    bars.set_title("class histogram", fontsize=9)
    bars.legend(fontsize=7)
    if suptitle:
        figure.suptitle(suptitle, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
