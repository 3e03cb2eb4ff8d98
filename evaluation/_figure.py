"""Figures drawn off-screen: a matplotlib ``Figure`` on the Agg canvas (no pyplot, so no global backend is switched
and nothing needs a display), saved as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DPI = 120
"""Resolution of every saved picture."""


def new_figure(width: float, height: float) -> Any:
    """An empty ``matplotlib.figure.Figure`` of ``width x height`` inches (matplotlib is imported only here)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def save(figure: Any, path: str | Path, *, title: str = "") -> Path:
    """Give ``figure`` its ``title``, lay it out and write it to ``path`` as PNG (folders made); returns the path."""
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png")
    return path
