"""Precision and recall over a knob: MaGNET / Polarity's ``rho`` against the truncation trick's ``psi``.

Both knobs trade quality for diversity. Polarity Sampling (Humayun, Balestriero and Baraniuk, CVPR 2022, §4) moves
along the trade-off with ``rho`` (``rho < 0`` towards the modes, ``rho > 0`` away from them); the truncation trick
(Brock, Donahue and Simonyan, "Large Scale GAN Training", ICLR 2019, §3.1; in StyleGAN's form ``z -> psi z``) with
``psi < 1``. Each curve is drawn in the precision-recall plane of Kynkäänniemi et al. (NeurIPS 2019,
:func:`gendebias.evaluation.precision_recall`), each point labelled with its knob. The function draws numbers it is
given: measuring them is the caller's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from gendebias.errors import InvalidArgumentError
from gendebias.evaluation._figure import new_figure, save


class TradeOff(NamedTuple):
    """One method's measured operating points, in the order of its knob."""

    name: str
    """Legend entry, e.g. ``"MaGNET / Polarity"`` or ``"truncation"``."""
    knob: str
    """The knob's symbol, e.g. ``"rho"`` or ``"psi"``."""
    values: Sequence[float]
    """Knob values, one per point."""
    precision: Sequence[float]
    """Measured precision at each knob value, in ``[0, 1]``."""
    recall: Sequence[float]
    """Measured recall at each knob value, in ``[0, 1]``."""


def precision_recall_tradeoff(curves: Sequence[TradeOff], path: str | Path, *,
                              title: str = "precision and recall: rho against truncation") -> Path:
    """Write each :class:`TradeOff` as a curve in the precision-recall plane (recall across, precision up), each
    point annotated ``knob = value``. Returns the path."""
    if not curves:
        raise InvalidArgumentError("precision_recall_tradeoff needs at least one curve")
    figure = new_figure(5.6, 4.8)
    axis = figure.subplots()
    for marker, curve in zip("osD^v<>", curves, strict=False):
        _check(curve)
        axis.plot(curve.recall, curve.precision, marker=marker, label=f"{curve.name} ({curve.knob})")
        for value, precision, recall in zip(curve.values, curve.precision, curve.recall, strict=True):
            axis.annotate(f"{curve.knob}={value:g}", (recall, precision), textcoords="offset points", xytext=(4, 4),
                          fontsize=7)
    axis.set_xlabel("recall (real samples the generated set covers)")
    axis.set_ylabel("precision (generated samples on the real manifold)")
    axis.set_xlim(-0.02, 1.02)
    axis.set_ylim(-0.02, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return save(figure, path, title=title)


def _check(curve: TradeOff) -> None:
    sizes = {len(curve.values), len(curve.precision), len(curve.recall)}
    if len(sizes) != 1 or not curve.values:
        raise InvalidArgumentError(f"curve {curve.name!r} needs as many precisions and recalls as knob values "
                                   f"(got {len(curve.values)}, {len(curve.precision)}, {len(curve.recall)})")
    for name, numbers in (("precision", curve.precision), ("recall", curve.recall)):
        if any(not 0.0 <= float(number) <= 1.0 for number in numbers):
            raise InvalidArgumentError(f"curve {curve.name!r}: every {name} must lie in [0, 1], got {list(numbers)}")
