"""``evaluate``: draw samples with each method, score them, and return the results table.

For every method (:mod:`.methods`) and every replicate seed, :func:`evaluate` draws ``n`` latents, runs the
generator on them, scores the images (:func:`.scores.sample_scores`: quality against a reference feature set where
one is given, class balance where a classifier is known) and records the sampler's ESS, distinct count, log-volume
evaluations and tempered ``beta``, and the mean and spread of the drawn latents' log-volumes. The rows are compared
with ``naive`` as :mod:`.table` describes, and the first replicate's images are returned for pictures.

``log_volume_function`` (latents -> log-volumes) replaces the exact Jacobian where given, for the samplers and for
the log-volume columns alike: :class:`LogVolumeCache` wraps the exact one so that latents seen once (the pilot that
methods with one seed share, the drawn latents of a sampler) are not evaluated again. The evaluations a row reports
are those the sampler asked for, cached or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError
from gendebias.evaluation._inputs import check_positive_int, check_seed
from gendebias.evaluation.methods import DEFAULT_METHODS, Draw, Method, draw, parse_methods
from gendebias.evaluation.scores import BALANCE, QUALITY, Classifier, Reference, sample_scores
from gendebias.evaluation.table import Estimate, Row, Table, compared
from gendebias.generators import Generator
from gendebias.geometry import log_volume
from gendebias.geometry.kernels import LogVolumeFunction


class Evaluation(NamedTuple):
    """The table, and each method's first-replicate images ``(n, ...)`` by method name (for pictures)."""

    table: Table
    images: dict[str, Tensor]


class LogVolumeCache:
    """Exact log-volumes of ``generator``, each distinct latent computed once (keyed by its bytes)."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.known: dict[bytes, float] = {}
        self.computed = 0

    def __call__(self, latents: Tensor) -> Tensor:
        keys = [row.tobytes() for row in latents.detach().flatten(1).cpu().numpy()]
        missing = [index for index, key in enumerate(keys) if key not in self.known]
        if missing:
            fresh = log_volume(self.generator, latents[torch.tensor(missing, device=latents.device)])
            self.computed += len(missing)
            for index, value in zip(missing, fresh.tolist(), strict=True):
                self.known[keys[index]] = value
        return torch.tensor([self.known[key] for key in keys], dtype=torch.float64)


def evaluate(generator: Generator, methods: Sequence[str | Method] = DEFAULT_METHODS, *, n: int = 500,
             seed: int = 0, replicates: int = 3, reference: Reference | None = None,
             classifier: Classifier | str | None = "generator", classifier_label: str | None = None,
             features: str | None = None,
             max_evaluations: int | None = None, log_volume_function: LogVolumeFunction | None = None,
             log_volumes: bool = True, alpha: float = 0.05, name: str | None = None,
             progress: Callable[[str], None] | None = None) -> Evaluation:
    """Compare sampling methods on ``generator`` (module docstring).

    Args:
        methods: method names (``"naive"``, ``"truncation:0.7"``, ``"magnet"``, ``"polarity:-1"``, ...) or
            :class:`Method` values; ``naive`` is added first when missing.
        n: latents per method and replicate; seed: the first replicate's seed; replicates: seeds per method.
        reference: real features to score against (quality columns are None without).
        classifier: images -> class probabilities, for the balance columns; ``"generator"`` takes the generator's
            own (None if it has none). Method ``balanced`` always balances the generator's own classifier.
        classifier_label: what the classifier is, recorded in the table (default: its type's name).
        features: the extractor's name, recorded in the table.
        max_evaluations: log-volume budget of each debiasing draw (:func:`gendebias.geometry.sample`).
        log_volumes: also measure the drawn latents' log-volumes (costs evaluations for prior and truncated draws).
        name: the generator's name in the table (default ``generator.name``).
        progress: called with one line of text after each draw.
    """
    n = check_positive_int(n, "n", minimum=6)  # density and coverage need more samples than their k = 5
    seeds = tuple(check_seed(seed) + offset for offset in range(check_positive_int(replicates, "replicates")))
    chosen = parse_methods(methods)
    judge = generator.classifier if classifier == "generator" else classifier
    if isinstance(judge, str):
        raise InvalidArgumentError(f"classifier must be a callable, None or 'generator', got {judge!r}")
    if generator.classifier is None and any(method.target == "balanced" for method in chosen):
        raise InvalidArgumentError(f"method 'balanced' balances the classes of the generator's own classifier; "
                                   f"{generator.name} has none (leave balanced out of the methods)", field="methods")
    volumes = log_volume_function or (lambda latents: log_volume(generator, latents))

    def drawer(method: Method, replicate_seed: int) -> tuple[Draw, Tensor, Tensor | None]:
        drawn = draw(generator, method, n, seed=replicate_seed, max_evaluations=max_evaluations,
                     log_volume_function=log_volume_function)
        with torch.no_grad():
            outputs = torch.cat([generator(batch) for batch in drawn.latents.split(1024)])
        return drawn, outputs, volumes(drawn.latents) if log_volumes else None

    setting = Setting(name or generator.name, n, seeds, reference, features, judge,
                      None if judge is None else classifier_label or _classifier_name(judge), max_evaluations, alpha)
    return tabulate(chosen, drawer, setting, progress)


class Setting(NamedTuple):
    """What a table records besides its rows (the arguments of :func:`evaluate`)."""

    name: str
    n: int
    seeds: tuple[int, ...]
    reference: Reference | None
    features: str | None
    classifier: Classifier | None
    classifier_label: str | None
    max_evaluations: int | None
    alpha: float


Drawer = Callable[[Method, int], tuple[Draw, Tensor, Tensor | None]]
"""``(method, seed) -> (draw, outputs, log-volumes of the drawn latents or None)``."""


def tabulate(methods: list[Method], drawer: Drawer, setting: Setting,
             progress: Callable[[str], None] | None = None) -> Evaluation:
    """Draw every method at every seed with ``drawer``, score the outputs and build the table (the loop that
    :func:`evaluate` and :func:`gendebias.evaluation.remote.evaluate_remote` share)."""
    rows, images = [], {}
    for method in methods:
        started = time.monotonic()
        records = []
        for index, replicate_seed in enumerate(setting.seeds):
            drawn, outputs, measured = drawer(method, replicate_seed)
            scores = sample_scores(outputs, reference=setting.reference, classifier=setting.classifier)
            records.append(Record(drawn, scores, None if measured is None else _spread(measured)))
            if index == 0:
                images[method.name] = outputs
            if progress is not None:
                progress(f"{method.name:<16} seed {replicate_seed}: {drawn.sampler}, ESS {drawn.ess:,.1f} of "
                         f"{drawn.latents.shape[0]}, {drawn.evaluations:,} evaluations, "
                         f"{time.monotonic() - started:.1f} s")
        rows.append(_row(method, setting.n, setting.seeds, records, time.monotonic() - started))
    reference = setting.reference
    table = Table(setting.name, tuple(compared(rows, setting.alpha)), setting.n, setting.seeds,
                  None if reference is None else reference.label, setting.features if reference else None,
                  setting.classifier_label, setting.max_evaluations, setting.alpha)
    return Evaluation(table, images)


class Record(NamedTuple):
    """One replicate of one method: the draw, its scores, and (mean, std) of its finite log-volumes or None."""

    drawn: Draw
    scores: dict[str, float | None]
    spread: tuple[float, float] | None


def _spread(log_volumes: Tensor) -> tuple[float, float]:
    finite = log_volumes.to(torch.float64)
    finite = finite[torch.isfinite(finite)]
    return float(finite.mean()), float(finite.std()) if finite.numel() > 1 else 0.0


def _row(method: Method, n: int, seeds: tuple[int, ...], records: list[Record], seconds: float) -> Row:
    """One table row from the replicates' records."""
    def over(values: list[float | None]) -> Estimate | None:
        return None if any(value is None for value in values) else Estimate.of([float(v) for v in values if
                                                                                  v is not None])

    scores = {key: over([record.scores[key] for record in records]) for key in QUALITY + BALANCE}
    draws = [record.drawn for record in records]
    spreads = [record.spread for record in records]
    warnings = tuple(dict.fromkeys(message for drawn in draws for message in drawn.warnings))
    return Row(
        method=method.name, target=method.target if method.kind == "sample" else "prior",
        rho=method.rho if method.kind != "truncation" else None, psi=method.psi, n=n, seeds=seeds,
        sampler=draws[0].sampler, **scores,
        ess=Estimate.of([drawn.ess for drawn in draws]),
        distinct=Estimate.of([float(drawn.distinct) for drawn in draws]),
        evaluations=Estimate.of([float(drawn.evaluations) for drawn in draws]),
        log_volume_mean=over([None if s is None else s[0] for s in spreads]),
        log_volume_std=over([None if s is None else s[1] for s in spreads]),
        beta=Estimate.of([drawn.beta for drawn in draws]), seconds=seconds, warnings=warnings)


def _classifier_name(classifier: Classifier) -> str:
    return type(classifier).__name__ if not hasattr(classifier, "__name__") else str(classifier.__name__)
