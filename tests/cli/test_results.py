"""``make results``: each generator's section holds its table, links pictures that exist, and the page its timing."""

import json

from gendebias.cli import results
from gendebias.cli.results import Run


def test_a_small_page_links_what_it_wrote(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RUNS", (
        Run("digits-vae", "digits-vae", ("naive", "polarity:-1", "balanced"), 12, 2, "digits", "digits", 2_000),
        Run("digits-vae", "digits-vae-naive-reference", ("naive", "truncation:0.5"), 12, 1, "naive", "pixels", None,
            reference_size=64),
    ))
    page = tmp_path / "docs" / "results.md"
    page.parent.mkdir()
    results.main(["--page", str(page)])
    text = page.read_text()
    assert "## digits-vae\n" in text and "## digits-vae-naive-reference\n" in text and "## How long it took" in text
    assert "| balanced | rho = +1 |" in text
    assert "a naive reference sample (64 prior draws" in text and "NOT real data" in text
    for name in ("digits-vae.png", "digits-vae-classes.png", "digits-vae-naive-reference.png"):
        assert f"](results/{name})" in text
        assert (page.parent / "results" / name).read_bytes()[:4] == b"\x89PNG"
    stored = json.loads((page.parent / "results" / "digits-vae.json").read_text())
    assert [row["method"] for row in stored["rows"]] == ["naive", "polarity:-1", "balanced"]
    assert stored["rows"][0]["ess"]["values"] == [12, 12]
