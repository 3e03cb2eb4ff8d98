"""``gendebias evaluate``: compare sampling methods on one generator and write the results table.

    gendebias evaluate digits-gan --n 200 --replicates 3 --out results/
    gendebias evaluate tests/generators/data/face-dcgan64.toml --methods naive,magnet --n 16 --replicates 1 \\
        --real naive --reference-size 512 --max-evaluations 64 --out face/

Runs in this process (it needs the ``evaluation`` extra) with :func:`gendebias.evaluation.evaluate`; writes
``table.json``, ``table.md`` and the pictures into ``--out``, prints the Markdown table, and reports each draw on
stderr as it finishes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gendebias.cli.common import reports_errors

FEATURES = ("digits", "pixels", "inception")
PIXEL_SIDE = 16  # pixels of larger images are resized to this first: FID's covariance is then 768 x 768 for RGB


@reports_errors
def evaluate_command(
    generator_id: Annotated[str, typer.Argument(metavar="GENERATOR",
                                                help="Built-in generator id, spec file (.toml) or diffusers folder.")],
    methods: Annotated[str, typer.Option(
        help="Comma-separated methods: naive, truncation:PSI, magnet, magnet-uniform, polarity:RHO, balanced, "
             "tilted:RHO, uniform:RHO (naive is always added).")] =
        "naive,truncation:0.7,truncation:0.5,magnet,magnet-uniform,polarity:-1,polarity:-0.5,polarity:0.5,balanced",
    n: Annotated[int, typer.Option("--n", help="Samples per method and replicate.")] = 200,
    replicates: Annotated[int, typer.Option(help="Seeds per method (seed, seed + 1, ...); 2 or more to mark "
                                                 "differences from naive beyond sampling error.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the first replicate.")] = 0,
    features: Annotated[str | None, typer.Option(
        help=f"Feature extractor: {', '.join(FEATURES)} (default: digits for the digits, else pixels; pixels of "
             f"images larger than {PIXEL_SIDE} x {PIXEL_SIDE} are resized to that first).")] = None,
    real: Annotated[str | None, typer.Option(
        help="Reference set: digits (scikit-learn's), naive (a large naive sample: NOT real data), none "
             "(default: digits for digits-gan/digits-vae, else none).")] = None,
    reference_size: Annotated[int, typer.Option(help="Prior draws in a naive reference set.")] = 2000,
    max_evaluations: Annotated[int | None, typer.Option(
        help="Log-volume budget of each debiasing draw; SMC stops there and the table shows the beta reached.")] = None,
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder for table.json, table.md and pictures.")]
        = Path("evaluation"),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress lines on stderr.")] = False,
) -> None:
    """Compare sampling methods (naive, truncation, MaGNET, Polarity, balanced) on quality, balance and cost."""
    from gendebias.evaluation import figures_results
    from gendebias.evaluation.evaluate import LogVolumeCache, evaluate
    from gendebias.evaluation.features import load_extractor
    from gendebias.evaluation.references import default_reference, load_reference
    from gendebias.evaluation.table import markdown
    from gendebias.generators import load_generator

    generator = load_generator(generator_id)
    reference_name = real or default_reference(generator_id)
    feature_name = features or ("digits" if reference_name == "digits" else "pixels")
    if feature_name not in FEATURES:
        from gendebias.errors import InvalidArgumentError

        raise InvalidArgumentError(f"unknown features {feature_name!r}; use one of {list(FEATURES)}")
    extractor = None if reference_name == "none" else load_extractor(feature_name, **_feature_options(
        feature_name, generator.output_shape))
    say = None if quiet else (lambda line: typer.echo(line, err=True))
    if say:
        say(f"evaluate     {generator_id}: reference {reference_name}, features {feature_name}")
    reference = load_reference(reference_name, generator, extractor, size=reference_size)
    has_classifier = generator.classifier is not None
    chosen = [name.strip() for name in methods.split(",") if name.strip()]
    if not has_classifier and "balanced" in chosen:
        chosen.remove("balanced")
        if say:
            say(f"skipped      balanced: {generator_id} has no classifier")
    result = evaluate(generator, chosen, n=n, seed=seed, replicates=replicates, reference=reference,
                      features=feature_name, max_evaluations=max_evaluations,
                      log_volume_function=LogVolumeCache(generator), name=generator_id,
                      classifier_label="the generator's classifier" if has_classifier else None, progress=say)
    json_path, markdown_path = result.table.write(out)
    pictures = figures_results.table_pictures(result.table, result.images, out,
                                              classifier=generator.classifier if has_classifier else None)
    typer.echo(markdown(result.table))
    for path in (json_path, markdown_path, *pictures):
        typer.echo(f"wrote        {path}", err=True)


def _feature_options(name: str, output_shape: tuple[int, ...]) -> dict[str, tuple[int, int]]:
    """``size`` for pixel features of images larger than :data:`PIXEL_SIDE` on a side; nothing otherwise."""
    if name == "pixels" and len(output_shape) == 3 and max(output_shape[1:]) > PIXEL_SIDE:
        return {"size": (PIXEL_SIDE, PIXEL_SIDE)}
    return {}
