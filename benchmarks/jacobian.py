"""Speed and accuracy of the Jacobian engine: ``python benchmarks/jacobian.py --suite cpu|gpu|smoke
[--budget-gb X] [--out FILE]``, one JSON object per line on stdout (and in ``FILE``).

For each generator (:mod:`benchmarks.models`, the digits zoo) the rows are measured in one process:

* ``forward``: latents/s of a plain batched ``generator(z)`` under ``torch.no_grad``, per batch size and precision.
  The **bound** of a log-volume row is the best forward throughput at its precision divided by ``d``: exact
  log-volumes need ``d`` Jacobian-vector products per latent, each at least one forward pass of one row, so
  ``share_of_bound = latents_per_s / bound`` is the share of that ceiling the engine reaches (a method that needs
  fewer than ``d`` products, ``randomized`` at large ``d``, can exceed 1).
* ``autograd_functional``: the per-sample baseline, a Python loop of ``torch.autograd.functional.jacobian`` (reverse
  mode, ``D`` backward passes per latent) then the same float64 log-volume. Where one latent would take longer than
  the suite allows, its time is extrapolated from a probe of the same ``autograd.grad`` calls (``extrapolated``).
* ``exact`` / ``randomized`` / ``projection``: :func:`~gendebias.geometry.volume.log_volume_estimate`, with errors
  against the fp32 exact answer (same ``top_k``) on the same latents (``mean_abs_error_nats``,
  ``max_abs_error_nats``, ``spearman``), and ``estimated_error_nats``, the method's own error estimate.
  ``projection`` with ``top_k`` is the published pipeline (random orthogonal projection, reverse mode, top-k).

Every row of a generator carries ``speedup_vs_<baseline>`` (its latents/s over the baseline's) for each baseline
measured on it: ``autograd_functional``, ``projection``, ``exact_fp32`` (exact at the suite's budget) and
``exact_top_k``. Rows of one generator are emitted together once all are measured. Rows that would not finish
inside the suite's time budget become ``{"row": "skipped", "reason": ...}``; a row whose call raises becomes
``{"row": "failed", "error": ...}`` and is retried once with ``chunk_size=1``.
Suites: ``cpu`` (``make bench``, ~5 min on 2 cores), ``gpu`` (``benchmarks/gpu.sh``, under 8 min) and ``smoke``
(tiny versions of every row of both, ~20 s on CPU; ``tests/benchmarks``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch

from gendebias.geometry.memory import default_memory_budget
from gendebias.geometry.volume import log_volume_estimate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import (
    MemoryMeter,
    accuracy,
    autograd_functional_log_volume,
    autograd_functional_seconds,
    best_time,
    forward_throughput,
)
from suites import SETTINGS, Plan, Settings, plans

PRODUCT_COST = 4.0
"""Forward passes one product costs, for predicting a row's time before running it."""
PROBE_ROWS = 256


@dataclass
class Context:
    """The run: suite name, device, settings, deadline (``time.monotonic``) and the output file."""

    suite: str
    device: torch.device
    settings: Settings
    deadline: float
    budget: int
    out: TextIO | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def emit(self, row: dict[str, Any]) -> None:
        line = json.dumps(row)
        print(line, flush=True)
        if self.out is not None:
            self.out.write(line + "\n")
            self.out.flush()


class Section:
    """The rows of one generator: measured first, then completed with speedups and accuracy and emitted."""

    def __init__(self, context: Context, plan: Plan, generator: Any) -> None:
        self.context, self.plan, self.generator = context, plan, generator
        count = max(plan.latents, plan.per_sample_latents, plan.top_k_latents, plan.precision_latents,
                    plan.budget_latents)
        self.latents = generator.sample_latents(count, seed=1)
        self.latent_dim = math.prod(generator.latent_shape)
        self.output_dim = math.prod(generator.output_shape)
        self.forward: dict[str, tuple[float, int]] = {}
        self.rows: list[dict[str, Any]] = []
        self.rates: dict[str, float] = {}
        self.references: dict[int | None, torch.Tensor] = {}

    def base_row(self, method: str, precision: str, top_k: int | None, count: int) -> dict[str, Any]:
        rate, batch = self.forward.get(precision, (None, None))
        return {"row": "result", "suite": self.context.suite, "generator": self.plan.name,
                "device": str(self.context.device), "precision": precision, "method": method, "top_k": top_k,
                "latent_dim": self.latent_dim, "output_dim": self.output_dim, "latents": count,
                "forward_latents_per_s": rate, "forward_batch": batch,
                "bound": rate / self.latent_dim if rate else None}

    def predicted_seconds(self, products: int, count: int) -> float:
        """Rough time of ``count`` latents of ``products`` products each, from the fp32 forward throughput."""
        rate = self.forward.get("fp32", (math.inf, 0))[0]
        return PRODUCT_COST * products * count / rate

    def skip(self, method: str, precision: str, top_k: int | None, reason: str) -> None:
        print(f"skipped {self.plan.name} {method} {precision}: {reason}", file=sys.stderr, flush=True)
        self.rows.append({"row": "skipped", "suite": self.context.suite, "generator": self.plan.name,
                          "device": str(self.context.device), "method": method, "precision": precision,
                          "top_k": top_k, "reason": reason})

    def fail(self, method: str, precision: str, top_k: int | None, error: str) -> None:
        print(f"failed {self.plan.name} {method} {precision}: {error}", file=sys.stderr, flush=True)
        self.rows.append({"row": "failed", "suite": self.context.suite, "generator": self.plan.name,
                          "device": str(self.context.device), "method": method, "precision": precision,
                          "top_k": top_k, "error": error})

    def add(self, row: dict[str, Any], *, label: str | None = None, values: Any = None) -> None:
        """Keep ``row``; ``label`` names it as a baseline, ``values`` are its log-volumes for the accuracy."""
        if row["method"] != "forward" and row.get("latents_per_s") and row.get("bound"):
            row["share_of_bound"] = row["latents_per_s"] / row["bound"]
        if label is not None:
            self.rates[label] = row["latents_per_s"]
            row["baseline"] = label
        if label in ("exact_fp32", "exact_top_k"):
            self.references[row["top_k"]] = values
        row["_values"] = values
        print(f"{row['generator']} {row['method']} {row['precision']} top_k={row['top_k']}: "
              f"{row['latents_per_s']:.4g} latents/s", file=sys.stderr, flush=True)
        self.rows.append(row)

    def finish(self) -> None:
        """Add ``speedup_vs_<baseline>`` and errors against the exact fp32 reference, then emit every row."""
        for row in self.rows:
            values = row.pop("_values", None)
            for label, rate in self.rates.items():
                if row.get("method") != "forward" and row.get("latents_per_s") and row.get("baseline") != label:
                    row[f"speedup_vs_{label}"] = row["latents_per_s"] / rate
            if values is not None and row.get("baseline") not in ("exact_fp32", "exact_top_k"):
                self._compare(row, values)
            self.context.emit(row)

    def _compare(self, row: dict[str, Any], values: torch.Tensor) -> None:
        """Errors of ``values`` against the exact fp32 log-volumes of the same latents and ``top_k``, if measured."""
        reference = self.references.get(row["top_k"])
        if reference is None or reference.shape[0] < values.shape[0]:
            return
        row.update(accuracy(values, reference[: values.shape[0]]))
        row["reference"] = "exact fp32" if row["top_k"] is None else f"exact fp32 top_k={row['top_k']}"


def forward_rows(section: Section, precisions: tuple[str, ...]) -> None:
    """Best forward throughput per precision (the bound of every row), one ``forward`` row each."""
    plan, generator = section.plan, section.generator
    latents = generator.sample_latents(max(plan.forward_batches), seed=2)
    for precision in precisions:
        rates = forward_throughput(generator, latents, batches=plan.forward_batches, precision=precision,
                                   repeats=section.context.settings.repeats)
        batch = max(rates, key=rates.__getitem__)
        section.forward[precision] = (rates[batch], batch)
        row = section.base_row("forward", precision, None, batch)
        row.update(latents_per_s=rates[batch], forward_by_batch={str(b): r for b, r in rates.items()})
        section.add(row)


def estimate_row(section: Section, method: str, *, count: int, top_k: int | None = None, precision: str = "fp32",
                 memory_budget: int | None = None, label: str | None = None) -> None:
    """Time ``log_volume_estimate`` on the first ``count`` latents (warm-up, then best of the suite's repeats).

    A ``RuntimeError`` gives a ``failed`` row with the message, and one retry with ``chunk_size=1`` (the retried row
    says so in ``retry_after_error``).
    """
    products = _products(method, top_k, section.latent_dim, section.output_dim)
    warmup = min(count, section.context.settings.warmup_latents)
    predicted = section.predicted_seconds(products, count + warmup)
    if predicted > section.context.remaining():
        reason = f"predicted {predicted:.0f} s, {section.context.remaining():.0f} s left"
        section.skip(method, precision, top_k, reason)
        return
    kwargs: dict[str, Any] = {"method": method, "top_k": top_k, "precision": precision,
                              "memory_budget": memory_budget, "chunk_size": None}
    try:
        row, values = _timed_estimate(section, count, kwargs)
    except RuntimeError as error:
        section.fail(method, precision, top_k, f"{type(error).__name__}: {error}")
        kwargs["chunk_size"] = 1
        row, values = _timed_estimate(section, count, kwargs)
        row["retry_after_error"] = f"{type(error).__name__}: {str(error)[:200]}"
    section.add(row, label=label, values=values)


def _timed_estimate(section: Section, count: int, kwargs: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """One estimate row: warm-up on a prefix, then the timed runs under a :class:`MemoryMeter`."""
    context, generator, latents = section.context, section.generator, section.latents[:count]
    log_volume_estimate(generator, latents[:context.settings.warmup_latents], **kwargs)
    with MemoryMeter(context.device) as meter:
        seconds, runs, estimate = best_time(lambda: log_volume_estimate(generator, latents, **kwargs),
                                            device=context.device, repeats=context.settings.repeats,
                                            max_seconds=min(context.settings.row_seconds, context.remaining()))
    given = kwargs["memory_budget"]
    budget = given if given is not None else default_memory_budget(context.device)
    row = section.base_row(kwargs["method"], kwargs["precision"], kwargs["top_k"], count)
    row.update(latents_per_s=count / seconds, seconds=seconds, runs=runs, precision_effective=estimate.precision,
               products=estimate.products, chunk_size=kwargs["chunk_size"],
               chunking={"latents": estimate.chunking.latents, "tangents": estimate.chunking.tangents},
               memory_budget=budget, memory_budget_source="given" if given is not None else "default",
               **_memory_fields(meter, budget), estimated_error_nats=_mean_or_none(estimate.error))
    return row, estimate.log_volume


def per_sample_row(section: Section) -> None:
    """The ``autograd.functional.jacobian`` loop on up to ``per_sample_latents`` latents, or extrapolated."""
    context, generator = section.context, section.generator
    if context.remaining() <= 0:
        section.skip("autograd_functional", "fp32", None, "the suite's time budget is spent")
        return
    predicted = autograd_functional_seconds(generator, section.latents[0], rows=PROBE_ROWS)
    allowed = min(context.settings.per_sample_seconds, context.remaining())
    count = max(0, min(section.plan.per_sample_latents, int(allowed // predicted)))
    row = section.base_row("autograd_functional", "fp32", None, count)
    row.update(predicted_seconds_per_latent=predicted, probe_rows=min(PROBE_ROWS, section.output_dim), chunking=None)
    values = None
    if count:
        latents = section.latents[:count]
        with MemoryMeter(context.device) as meter:
            seconds, runs, values = best_time(lambda: autograd_functional_log_volume(generator, latents),
                                              device=context.device, repeats=context.settings.repeats,
                                              max_seconds=allowed)
        row.update(latents_per_s=count / seconds, seconds=seconds, runs=runs, extrapolated=False,
                   **_memory_fields(meter, None))
    else:
        row.update(latents_per_s=1 / predicted, extrapolated=True, peak_memory_bytes=None)
    section.add(row, label="autograd_functional", values=values)


def run_plan(context: Context, plan: Plan) -> None:
    """Every row of ``plan`` on one generator, in dependency order; emitted together at the end."""
    if context.remaining() <= 0:
        context.emit({"row": "skipped", "suite": context.suite, "generator": plan.name,
                      "reason": "the suite's time budget is spent"})
        return
    try:
        generator = plan.build(context.device)
    except ImportError as error:
        context.emit({"row": "skipped", "suite": context.suite, "generator": plan.name, "reason": str(error)})
        return
    section = Section(context, plan, generator)
    forward_rows(section, ("fp32", *plan.precisions))
    budget = plan.memory_budget(context.budget)
    if plan.exact:
        estimate_row(section, "exact", count=plan.latents, memory_budget=budget, label="exact_fp32")
    if plan.per_sample_latents:
        per_sample_row(section)
    labels = {"exact": "exact_top_k", "projection": "projection", "randomized": None}
    for method in plan.top_k_rows:
        estimate_row(section, method, count=plan.top_k_latents, top_k=plan.top_k, memory_budget=budget,
                     label=labels[method])
    for precision in plan.precisions:
        estimate_row(section, "exact", count=plan.precision_latents, precision=precision, memory_budget=budget)
    for sweep in plan.budgets:
        estimate_row(section, "exact", count=plan.budget_latents, memory_budget=sweep)
    section.finish()


def environment_row(context: Context, argv: list[str]) -> dict[str, Any]:
    device = context.device
    return {"row": "environment", "suite": context.suite, "date": datetime.datetime.now(datetime.UTC).isoformat(),
            "command": " ".join(["python", "benchmarks/jacobian.py", *argv]), "torch": torch.__version__,
            "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else "cpu", "threads": torch.get_num_threads(), "time_budget_s": context.settings.time_budget_s,
            "budget_bytes": context.budget}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SETTINGS), default="cpu")
    parser.add_argument("--budget-gb", type=float, default=40.0,
                        help="memory_budget of the gpu suite's rows, GiB (2^30 bytes) per chunk")
    parser.add_argument("--out", type=Path, help="also write the rows to this JSON-lines file")
    parser.add_argument("--device", default=None, help="default: cuda for --suite gpu when available, else cpu")
    parser.add_argument("--time-budget-s", type=float, help="override the suite's time budget")
    args = parser.parse_args(argv)
    settings = SETTINGS[args.suite]
    if args.time_budget_s is not None:
        settings = settings.replace(time_budget_s=args.time_budget_s)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    device = torch.device(args.device or ("cuda" if args.suite == "gpu" and torch.cuda.is_available() else "cpu"))
    out = None
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        out = args.out.open("w")
    context = Context(args.suite, device, settings, time.monotonic() + settings.time_budget_s,
                      int(args.budget_gb * 2**30), out)
    context.emit(environment_row(context, argv))
    started = time.monotonic()
    for plan in plans(args.suite):
        run_plan(context, plan)
    context.emit({"row": "end", "suite": args.suite, "elapsed_s": time.monotonic() - started})
    if out is not None:
        out.close()


def _products(method: str, top_k: int | None, latent_dim: int, output_dim: int) -> int:
    """Products per latent of a method with its default options (for the time prediction only)."""
    if method == "randomized":
        return 2 * 3 * min((top_k or 0) + 10, latent_dim)
    if method == "projection":
        return min(output_dim, 2 * latent_dim)
    return latent_dim


def _memory_fields(meter: MemoryMeter, budget: int | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"peak_memory_bytes": meter.peak_bytes, "memory_at_start_bytes": meter.start_bytes,
                              "memory_kind": meter.kind}
    if meter.kind.startswith("cuda") and budget is not None and meter.peak_bytes is not None:
        fields["peak_within_budget"] = meter.peak_bytes - (meter.start_bytes or 0) <= budget
    return fields


def _mean_or_none(values: torch.Tensor) -> float | None:
    finite = values[torch.isfinite(values)]
    return float(finite.mean()) if finite.numel() else None


if __name__ == "__main__":
    main()
