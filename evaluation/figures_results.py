"""Pictures of a results table: each method's first samples side by side, titled with the method and its numbers.

* :func:`table_pictures`: the pictures of one results table (what ``gendebias evaluate`` and ``make results`` write).
* :func:`method_samples`: ``(title, images)`` pairs as one PNG of sample grids.

The class histograms of labelled generators come from :func:`gendebias.evaluation.pictures.before_after`. Figures
are drawn small (low dpi, few samples) so that a results page's pictures stay within a few hundred kilobytes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from gendebias.evaluation.pictures import Panel, before_after, grid_image
from gendebias.evaluation.scores import Classifier, class_probabilities
from gendebias.evaluation.table import Row, Table


def method_samples(panels: list[tuple[str, Tensor]], path: str | Path, *, columns: int = 4, count: int = 16,
                   dpi: int = 72, suptitle: str = "") -> Path:
    """Write a row of sample grids, one per ``(title, images)`` panel (images ``(N, C, H, W)`` in ``[-1, 1]``,
    the first ``count`` shown in ``columns``); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0), squeeze=False)
    for axis, (title, images) in zip(axes[0], panels, strict=True):
        axis.imshow(grid_image(images[:count], columns), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axis.set_title(title, fontsize=8)
        axis.set_xticks([])
        axis.set_yticks([])
    if suptitle:
        figure.suptitle(suptitle, fontsize=9)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path


PICTURED = ("naive", "truncation:0.5", "magnet", "polarity:-1", "polarity:0.5", "balanced")
"""Methods shown in a table's sample grids, where the table has them."""
HISTOGRAMS = ("naive", "truncation:0.5", "magnet", "balanced")
"""Methods shown in a table's class-histogram figure (fewer: the bars of each share one chart)."""


def table_pictures(table: Table, images: dict[str, Tensor], folder: str | Path, *, stem: str = "samples",
                   classifier: Classifier | None = None, methods: tuple[str, ...] = PICTURED,
                   histograms: tuple[str, ...] = HISTOGRAMS) -> list[Path]:
    """The pictures of a results table: ``{stem}.png``, the first samples of each pictured method; with a
    ``classifier``, ``{stem}-classes.png`` too (:func:`~gendebias.evaluation.pictures.before_after`: grids and the
    class histograms of the first replicate). Returns the paths written."""
    shown = [name for name in methods if name in images] or list(images)[:4]
    panels = [(f"{name}\n{_numbers(table.row(name))}", images[name]) for name in shown]
    folder = Path(folder)
    paths = [method_samples(panels, folder / f"{stem}.png", columns=4, count=16,
                            suptitle=f"{table.generator}: first {min(16, table.n)} samples of seed {table.seeds[0]}")]
    if classifier is not None:
        labelled = [Panel(f"{name}\n{_numbers(table.row(name))}", images[name],
                          torch.bincount(class_probabilities(images[name], classifier).argmax(dim=1),
                                         minlength=_classes(images[name], classifier)))
                    for name in histograms if name in images]
        paths.append(before_after(labelled, folder / f"{stem}-classes.png", count=32,
                                  suptitle=f"{table.generator}: 32 samples and the class shares of seed "
                                           f"{table.seeds[0]} ({table.n} samples each)"))
    for path in paths:
        shrink(path)
    return paths


def shrink(path: Path, *, colors: int = 64) -> None:
    """Rewrite a PNG with an adaptive palette of ``colors`` (about a third of the bytes for these figures)."""
    from PIL import Image

    with Image.open(path) as image:
        palette = image.convert("RGB").quantize(colors=colors)
    palette.save(path, optimize=True)


def _numbers(row: Row) -> str:
    return f"ESS {row.ess.values[0]:,.0f}, {row.distinct.values[0]:,.0f} distinct" + \
        (f", beta {row.beta.values[0]:.2g}" if row.beta.values[0] < 1 else "")


def _classes(images: Tensor, classifier: Classifier) -> int:
    return int(class_probabilities(images[:1], classifier).shape[1])
