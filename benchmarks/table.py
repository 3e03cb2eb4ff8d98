"""Markdown table of ``benchmarks/jacobian.py`` rows: ``python benchmarks/table.py rows.jsonl``.

One line per result row (forward rows folded into the ``bound`` column), then the skipped and failed rows; lines
that are not JSON objects (``make`` echoing its command) are ignored.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

COLUMNS = (
    ("generator", "generator"), ("method", "method"), ("precision", "precision"), ("top_k", "top-k"),
    ("memory_budget", "budget"), ("chunking", "chunk (latents x tangents)"), ("latents", "latents"),
    ("latents_per_s", "latents/s"), ("bound", "bound"), ("share_of_bound", "share of bound"),
    ("speedup_vs_autograd_functional", "vs per-sample"), ("speedup_vs_projection", "vs projection"),
    ("speedup_vs_exact_fp32", "vs exact fp32"), ("mean_abs_error_nats", "mean abs err"),
    ("max_abs_error_nats", "max abs err"), ("spearman", "Spearman"), ("estimated_error_nats", "reported err"),
    ("peak_memory_bytes", "peak memory"),
)


def cell(key: str, row: dict[str, Any]) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if key == "chunking":
        return f"{value['latents']} x {value['tangents']}"
    if key in ("memory_budget", "peak_memory_bytes"):
        return f"{value / 2**20:,.0f} MiB" if value >= 2**20 else f"{value / 2**10:,.0f} KiB"
    if key == "latents" and row.get("extrapolated"):
        return "extrapolated"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        if row["row"] == "result" and row["method"] != "forward":
            lines.append("| " + " | ".join(cell(key, row) for key, _ in COLUMNS) + " |")
    for row in rows:
        if row["row"] in ("skipped", "failed"):
            what = " ".join(str(row.get(key)) for key in ("generator", "method", "precision") if row.get(key))
            lines.append(f"\n{row['row']}: {what}: {row.get('reason') or row.get('error')}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.rows.read_text().splitlines() if line.startswith("{")]
    print(table(rows))


if __name__ == "__main__":
    main()
