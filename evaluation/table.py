"""The results table: one row per method, each number a mean over seeded replicates with its standard error, and
for each quality or balance metric whether the method beat naive sampling beyond sampling error.

**Sampling error.** Every method is drawn ``R`` times with the seeds ``seed, seed + 1, ..., seed + R - 1``, each
replicate a fresh sample of ``n`` (prior draws, a pilot, a pool or an SMC population: everything random is
redrawn). A metric's estimate is the replicates' mean and its standard error ``s / sqrt(R)``. A method **beats**
naive on a metric when Welch's two-sample t-test of its ``R`` values against naive's gives ``p < alpha``
(0.05 by default) and the difference points the metric's good way (:data:`BETTER`); it is **worse** when the
difference is significant the other way, and **same** otherwise. Replicates rather than a bootstrap of one sample:
an SMC sample's draws are correlated (its ESS is below ``n``) and the k-NN metrics change when a sample holds copies,
so resampling one sample's points would understate the error. With fewer than two replicates nothing is marked
(``n/a``). Many metrics and methods are tested at once: at ``alpha = 0.05`` about one mark in twenty can be chance.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

BETTER: dict[str, Literal[1, -1]] = {"precision": 1, "recall": 1, "density": 1, "coverage": 1, "fid": -1,
                                     "kl": -1, "tv": -1, "fairness": -1}
"""Metrics compared with naive, and the direction that is better: +1 higher, -1 lower."""

Verdict = Literal["better", "worse", "same", "n/a"]

COLUMNS = {"precision": "precision", "recall": "recall", "density": "density", "coverage": "coverage",
           "fid": "FID", "kl": "class KL", "tv": "class TV", "fairness": "fairness L2", "ess": "ESS",
           "distinct": "distinct", "evaluations": "evaluations", "log_volume_mean": "log-vol mean",
           "log_volume_std": "log-vol std", "beta": "beta"}
"""Row fields shown in the Markdown table, with their headers."""


@dataclass(frozen=True)
class Estimate:
    """A metric over replicates: ``mean``, standard error ``se`` (``s / sqrt(R)``; 0 for one replicate) and the
    replicate ``values`` in seed order."""

    mean: float
    se: float
    values: tuple[float, ...]

    @staticmethod
    def of(values: list[float]) -> Estimate:
        count = len(values)
        mean = math.fsum(values) / count
        spread = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (count - 1)) if count > 1 else 0.0
        return Estimate(mean, spread / math.sqrt(count), tuple(values))


@dataclass(frozen=True)
class Row:
    """One method's numbers (``docs/evaluation.md#the-results-table`` says what each column means)."""

    method: str
    target: str
    rho: float | None
    psi: float | None
    n: int
    seeds: tuple[int, ...]
    sampler: str
    precision: Estimate | None
    recall: Estimate | None
    density: Estimate | None
    coverage: Estimate | None
    fid: Estimate | None
    kl: Estimate | None
    tv: Estimate | None
    fairness: Estimate | None
    ess: Estimate
    distinct: Estimate
    evaluations: Estimate
    log_volume_mean: Estimate | None
    log_volume_std: Estimate | None
    beta: Estimate
    seconds: float
    warnings: tuple[str, ...] = ()
    versus_naive: dict[str, Verdict] = field(default_factory=dict)


@dataclass(frozen=True)
class Table:
    """A results table for one generator; ``reference`` says what the quality metrics compare with."""

    generator: str
    rows: tuple[Row, ...]
    n: int
    seeds: tuple[int, ...]
    reference: str | None
    features: str | None
    classifier: str | None
    max_evaluations: int | None
    alpha: float
    notes: tuple[str, ...] = ()

    def row(self, method: str) -> Row:
        for row in self.rows:
            if row.method == method:
                return row
        raise KeyError(method)

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))

    def write(self, folder: str | Path, *, stem: str = "table") -> tuple[Path, Path]:
        """Write ``{stem}.json`` and ``{stem}.md`` into ``folder``; returns both paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        json_path, markdown_path = folder / f"{stem}.json", folder / f"{stem}.md"
        json_path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        markdown_path.write_text(markdown(self) + "\n")
        return json_path, markdown_path


def verdict(values: tuple[float, ...], naive: tuple[float, ...], direction: int, alpha: float) -> Verdict:
    """``better``, ``worse`` or ``same`` than naive by Welch's t-test at ``alpha`` (module docstring); ``n/a`` with
    fewer than two replicates on either side."""
    if len(values) < 2 or len(naive) < 2:
        return "n/a"
    mean, base = math.fsum(values) / len(values), math.fsum(naive) / len(naive)
    if mean == base:
        return "same"
    spread = _variance(values) / len(values) + _variance(naive) / len(naive)
    if spread == 0:
        significant = True  # both exact and different
    else:
        from scipy.stats import ttest_ind

        with warnings.catch_warnings():  # "nearly identical data": the p-value is still the test's answer
            warnings.simplefilter("ignore", RuntimeWarning)
            significant = float(ttest_ind(values, naive, equal_var=False).pvalue) < alpha
    if not significant:
        return "same"
    return "better" if (mean - base) * direction > 0 else "worse"


def compared(rows: list[Row], alpha: float) -> list[Row]:
    """``rows`` with ``versus_naive`` filled in against the row named ``naive``."""
    naive = next((row for row in rows if row.method == "naive"), None)
    if naive is None:
        return rows
    out = []
    for row in rows:
        verdicts: dict[str, Verdict] = {}
        for metric, direction in BETTER.items():
            mine, base = getattr(row, metric), getattr(naive, metric)
            if mine is not None and base is not None and row is not naive:
                verdicts[metric] = verdict(mine.values, base.values, direction, alpha)
        out.append(Row(**{**row.__dict__, "versus_naive": verdicts}))
    return out


MARKS = {"better": " ▲", "worse": " ▼", "same": "", "n/a": ""}


def markdown(table: Table) -> str:
    """The table as Markdown: a header of what was measured, the numbers with marks, then per method in words
    where it beat naive, where it was worse, and where it made no difference."""
    shown = [key for key in COLUMNS if any(getattr(row, key) is not None for row in table.rows)]
    seeds = ", ".join(str(seed) for seed in table.seeds)
    plural = "s" if len(table.seeds) > 1 else ""
    lines = [f"**{table.generator}**: n = {table.n:,} per replicate, {len(table.seeds)} replicate{plural} "
             f"(seed{plural} {seeds}); "
             f"quality against {table.reference or 'no real set (quality columns omitted)'}"
             f"{f', features: {table.features}' if table.features else ''}; class balance "
             f"{f'by {table.classifier}' if table.classifier else 'not measured (no classifier)'}; "
             f"budget {f'{table.max_evaluations:,} log-volume evaluations' if table.max_evaluations else 'none'} "
             "per draw.", ""]
    lines.append("| method | knob | " + " | ".join(COLUMNS[key] for key in shown) + " | s |")
    lines.append("|---" * (len(shown) + 3) + "|")
    for row in table.rows:
        knob = f"psi = {row.psi:g}" if row.psi is not None else f"rho = {row.rho:+g}" if row.rho else "rho = 0"
        cells = [_cell(getattr(row, key), key, row.versus_naive.get(key, "n/a")) for key in shown]
        lines.append(f"| {row.method} | {knob} | " + " | ".join(cells) + f" | {row.seconds:.0f} |")
    lines += ["", f"▲ better than naive, ▼ worse, beyond sampling error (Welch t-test over the replicates, "
              f"p < {table.alpha:g}); unmarked: no difference that the replicates can tell. Values are mean ± "
              "standard error over replicates.", ""]
    lines += [f"- **{row.method}**: {_summary(row)}" for row in table.rows if row.versus_naive]
    warned = [(row.method, message) for row in table.rows for message in row.warnings]
    if warned:
        lines += ["", "Sampler warnings (each message once, over all replicates):", ""]
        lines += [f"- {method}: {message}" for method, message in warned]
    lines += [f"\n{note}" for note in table.notes]
    return "\n".join(lines)


def _summary(row: Row) -> str:
    groups = {kind: [COLUMNS[m] for m, v in row.versus_naive.items() if v == kind] for kind in ("better", "worse")}
    if all(verdict == "n/a" for verdict in row.versus_naive.values()):
        return "not compared (one replicate)"
    if not groups["better"]:
        text = "does not beat naive on any metric"
    else:
        text = "beats naive on " + ", ".join(groups["better"])
    if groups["worse"]:
        text += "; worse on " + ", ".join(groups["worse"])
    return text


def _cell(estimate: Estimate | None, key: str, mark: Verdict) -> str:
    if estimate is None:
        return "n/a"
    if key in ("distinct", "evaluations"):
        return f"{estimate.mean:,.0f}"
    if key in ("ess", "fid"):
        value = f"{estimate.mean:,.1f}" + (f" ± {estimate.se:.1f}" if estimate.se else "")
    elif key == "beta":
        value = f"{estimate.mean:.3g}"
    else:
        value = f"{estimate.mean:.3f}" + (f" ± {estimate.se:.3f}" if estimate.se else "")
    return value + MARKS[mark]


def _variance(values: tuple[float, ...]) -> float:
    mean = math.fsum(values) / len(values)
    return math.fsum((value - mean) ** 2 for value in values) / (len(values) - 1)


def _finite(value: Any) -> Any:
    """JSON-safe: non-finite floats become None, tuples lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
