"""``gendebias evaluate``: the table's numbers are the library's, reproducible by seed, and consistent across rows."""

import json

import pytest
import torch

from gendebias.evaluation import balance
from gendebias.evaluation.scores import class_probabilities
from gendebias.generators import load_generator
from gendebias.geometry import sample

N = 24
ARGS = ("evaluate", "digits-vae", "--methods", "naive,truncation:1,polarity:-1,balanced", "--n", str(N),
        "--replicates", "2", "--quiet")
QUALITY = ("precision", "recall", "density", "coverage", "fid", "kl", "tv", "fairness")


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """Two runs of the same command with the same seed, and one with another seed (each a parsed table.json)."""
    from typer.testing import CliRunner

    from gendebias.cli.main import app

    runner, found = CliRunner(), {}
    for name, extra in (("first", ()), ("again", ()), ("other", ("--seed", "7"))):
        folder = tmp_path_factory.mktemp(name)
        result = runner.invoke(app, [*ARGS, "--out", str(folder), *extra])
        assert result.exit_code == 0, result.output
        found[name] = (json.loads((folder / "table.json").read_text()), folder, result)
    return found


def _rows(table):
    return {row["method"]: row for row in table["rows"]}


def test_the_same_seed_gives_the_same_table_and_another_seed_another(tables):
    first, again, other = (_rows(tables[name][0]) for name in ("first", "again", "other"))
    for method in first:
        for key in (*QUALITY, "ess", "distinct", "evaluations", "log_volume_mean"):
            assert first[method][key] == again[method][key], (method, key)
    assert first["naive"]["precision"]["values"] != other["naive"]["precision"]["values"]
    assert other["naive"]["seeds"] == [7, 8]


def test_prior_draws_cost_nothing_and_truncation_at_psi_1_is_naive(tables):
    rows = _rows(tables["first"][0])
    assert rows["naive"]["ess"]["values"] == [N, N]
    assert rows["naive"]["distinct"]["values"] == [N, N]
    assert rows["naive"]["evaluations"]["values"] == [0, 0]
    for key in (*QUALITY, "log_volume_mean", "log_volume_std"):
        assert rows["truncation:1"][key] == rows["naive"][key], key
    assert all(verdict == "same" for verdict in rows["truncation:1"]["versus_naive"].values())


def test_a_debiased_rows_ess_and_distinct_are_what_sample_gives(invoke, tmp_path):
    generator = load_generator("digits-vae")
    result = invoke("evaluate", "digits-vae", "--methods", "polarity:-1", "--n", str(N), "--replicates", "2",
                    "--real", "none", "--quiet", "--out", "out")
    assert result.exit_code == 0, result.output
    row = _rows(json.loads((tmp_path / "out" / "table.json").read_text()))["polarity:-1"]
    for index, seed in enumerate((0, 1)):
        drawn = sample(generator, N, rho=-1.0, seed=seed)
        assert row["ess"]["values"][index] == pytest.approx(drawn.ess, rel=1e-12)
        assert row["distinct"]["values"][index] == drawn.distinct
        assert row["evaluations"]["values"][index] == drawn.evaluations
    assert row["precision"] is None  # --real none: no quality columns


def test_the_naive_rows_class_balance_is_the_classifiers_on_the_prior_draws(tables):
    generator = load_generator("digits-vae")
    row = _rows(tables["first"][0])["naive"]
    for index, seed in enumerate((0, 1)):
        with torch.no_grad():
            images = generator(generator.sample_latents(N, seed=seed))
        labels = class_probabilities(images, generator.classifier).argmax(dim=1)
        measured = balance(labels, classes=10)
        assert row["kl"]["values"][index] == pytest.approx(measured.kl_divergence, rel=1e-12)
        assert row["fairness"]["values"][index] == pytest.approx(measured.fairness_discrepancy, rel=1e-12)
    assert 0 <= row["precision"]["mean"] <= 1 and 0 <= row["coverage"]["mean"] <= 1


def test_it_writes_the_markdown_and_pictures_and_prints_the_table(tables):
    table, folder, result = tables["first"]
    assert table["reference"].startswith("scikit-learn digits (1,797 real images)")
    markdown = (folder / "table.md").read_text()
    assert "| balanced | rho = +1 |" in markdown and markdown.strip() in result.stdout
    for name in ("samples.png", "samples-classes.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unknown_method_is_one_error_line(invoke):
    result = invoke("evaluate", "digits-vae", "--methods", "naive,polarity", "--quiet")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: unknown method 'polarity'; use naive, magnet, magnet-uniform, balanced, truncation:PSI, polarity:RHO, "
        "tilted:RHO, uniform:RHO or balanced:RHO (e.g. polarity:-0.5)"]
