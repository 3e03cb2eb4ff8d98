"""``make results``: regenerate ``docs/results.md`` and its pictures ``docs/results/*.png`` from a fresh clone.

Runs :func:`gendebias.evaluation.evaluate` on three generators and writes one page:

* ``digits-gan`` and ``digits-vae`` (the built-in zoo): every default method, ``n = 200`` per replicate, 3
  replicates, quality against scikit-learn's digits (all 1,797 images) in the feature space of the zoo's digit
  classifier's penultimate layer, class balance by that classifier.
* the face DCGAN-64 of ``gan_face_generate==1.1.1`` (``tests/generators/data/face-dcgan64.toml``; ``make results``
  installs it with ``--no-deps``): no real set exists here, so quality columns are measured against a large
  **naive** sample (labelled so in the table: they say how far a method moves from naive sampling, not whether its
  samples are better); ``n = 8``, one replicate, a budget of 16 log-volume evaluations per draw (one exact
  log-volume costs about a hundred forward passes), and no ``balanced`` row (no classifier).

Every table, seed and sample count is on the page; its last section gives the wall time and CPU time of the run
that wrote it, with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gendebias.evaluation import figures_results
from gendebias.evaluation.evaluate import LogVolumeCache, evaluate
from gendebias.evaluation.features import load_extractor
from gendebias.evaluation.methods import DEFAULT_METHODS
from gendebias.evaluation.references import load_reference
from gendebias.evaluation.table import Table, markdown
from gendebias.generators import load_generator

FACE_SPEC = "tests/generators/data/face-dcgan64.toml"


@dataclass(frozen=True)
class Run:
    """One generator's section: what to draw and what to score against."""

    source: str
    name: str
    methods: tuple[str, ...]
    n: int
    replicates: int
    reference: str
    features: str
    max_evaluations: int | None
    reference_size: int = 2000
    feature_options: tuple[tuple[str, object], ...] = ()
    note: str = ""
    order: int = 0  # runs go in this order (the page keeps the order of RUNS): the slowest first


FACE_NOTE = """**No real face set exists for this generator**, so precision, recall, density, coverage and FID above are
measured against a naive reference sample of the same generator (pixels resized to 16 x 16): they say how far each
method moves away from naive sampling, not whether its samples are better, and nothing here shows that debiasing
improves the faces. With one replicate nothing is marked. What can be read: the ESS, distinct draws and evaluations
of each sampler, the tempered `beta` it reached within its budget (the samples follow the prior tilted by
`vol^(beta rho)`, not the full target, when beta < 1), and the log-volume spread of the drawn latents. At such
budgets rows of one seed can coincide: the methods share the seed's pilot, and the one SMC move sweep the budget
buys can resample the same particles for exponents of one sign."""

RUNS = (
    Run("digits-gan", "digits-gan", DEFAULT_METHODS, 200, 3, "digits", "digits", 10_000),
    Run("digits-vae", "digits-vae", DEFAULT_METHODS, 200, 3, "digits", "digits", 10_000),
    Run(FACE_SPEC, "face-dcgan64", tuple(m for m in DEFAULT_METHODS if m != "balanced"), 8, 1, "naive", "pixels",
        16, reference_size=512, feature_options=(("size", (16, 16)),), note=FACE_NOTE, order=-1),
)

INTRO = """# Results: does debiasing help?

*Written by `make results` (`python -m gendebias.cli.results`); do not edit by hand. Each run redraws everything
from the seeds below; [evaluation.md](evaluation.md#the-results-table) says what every column means and how "beats
naive" is decided.*

Methods: **naive** prior draws; the **truncation** trick `z' = psi z` (psi 0.7 and 0.5); **MaGNET** as its code
computes it (target `tilted`, rho = 1) and as its paper states it (**magnet-uniform**: target `uniform`, rho = 1,
on the ball holding 99% of the prior's mass); **Polarity** sampling at rho = -1, -0.5 and +0.5 (target `tilted`,
all singular values); **balanced** (classes balanced by the generator's classifier, each class volume-uniform).
Every debiasing row is drawn by `gendebias.geometry.sample` with the default `sampler="auto"`; ESS, distinct
draws, log-volume evaluations and the tempered `beta` reached (1 unless a budget stopped SMC) are the sampler's own.
Prior and truncated draws are independent: their ESS is n and they cost no evaluation (their log-volume columns
are measured afterwards, for comparison).
"""




def section(run: Run, pictures: Path, page: Path) -> str:
    """Evaluate one generator, write its JSON and pictures into ``pictures``, return its Markdown section."""
    started = time.monotonic()
    generator = load_generator(run.source)
    extractor = load_extractor(run.features, **dict(run.feature_options))
    reference = load_reference(run.reference, generator, extractor, size=run.reference_size)
    classifier = generator.classifier
    result = evaluate(generator, run.methods, n=run.n, replicates=run.replicates, reference=reference,
                      features=run.features + (" 16 x 16" if run.feature_options else ""),
                      max_evaluations=run.max_evaluations, log_volume_function=LogVolumeCache(generator),
                      name=run.name, classifier_label="the zoo's digit classifier" if classifier else None,
                      progress=lambda line: print(f"{run.name:<13} {line}", flush=True))
    (pictures / f"{run.name}.json").write_text(_json(result.table))
    paths = figures_results.table_pictures(result.table, result.images, pictures, stem=run.name,
                                           classifier=classifier)
    links = "\n\n".join(f"![{path.stem}]({path.relative_to(page.parent).as_posix()})" for path in paths)
    note = f"\n\n{run.note}" if run.note else ""
    return (f"## {run.name}\n\n{markdown(result.table)}{note}\n\n{links}\n\n"
            f"Numbers as JSON: [{run.name}.json]({pictures.relative_to(page.parent).as_posix()}/{run.name}.json). "
            f"Section time {time.monotonic() - started:.0f} s.\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--page", type=Path, default=Path("docs/results.md"), help="the page to write")
    parser.add_argument("--only", nargs="*", help="generator names to run (default: all three)")
    args = parser.parse_args(argv)
    started, load = time.monotonic(), os.getloadavg()[0]
    pictures = args.page.parent / "results"
    pictures.mkdir(parents=True, exist_ok=True)
    runs = [run for run in RUNS if not args.only or run.name in args.only]
    sections = {run.name: f"## {run.name}\n\n*Not finished: the run that wrote this page stopped before it.*\n"
                for run in runs}
    for run in sorted(runs, key=lambda run: run.order):  # the page is rewritten after each section
        sections[run.name] = section(run, pictures, args.page)
        args.page.write_text("\n".join([INTRO, *sections.values(), timing(started, load, done=False)]))
    args.page.write_text("\n".join([INTRO, *sections.values(), timing(started, load, done=True)]))
    print(f"wrote {args.page} and {pictures}/ in {time.monotonic() - started:.0f} s")


def timing(started: float, load: float, *, done: bool) -> str:
    """The last section: wall and CPU time of this run, the machine and its load."""
    seconds, usage = time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF)
    how = "was written by `make results` in" if done else "is being written by `make results`; so far"
    return (f"## How long it took\n\nThis page {how} **{seconds / 60:.1f} minutes** of wall time "
            f"({usage.ru_utime + usage.ru_stime:,.0f} s of CPU time) on a {os.cpu_count()}-core CPU, torch "
            f"{torch.__version__} with {torch.get_num_threads()} threads (OMP_NUM_THREADS "
            f"{os.environ.get('OMP_NUM_THREADS', 'unset')}); load average {load:.1f} at the start and "
            f"{os.getloadavg()[0]:.1f} at the end (other jobs shared the machine).\n")


def _json(table: Table) -> str:
    return json.dumps(table.to_dict(), indent=1, allow_nan=False) + "\n"


if __name__ == "__main__":
    main()
