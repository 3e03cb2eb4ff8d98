"""The results table: estimates over replicates, the verdict against naive, and what JSON and Markdown carry."""

import json
import math

import pytest
from scipy.stats import ttest_ind

from gendebias.evaluation.table import Estimate, Row, Table, compared, markdown, verdict


def test_an_estimate_is_the_mean_and_the_standard_error_of_the_mean():
    estimate = Estimate.of([1.0, 2.0, 6.0])
    assert estimate.mean == 3.0
    assert estimate.se == pytest.approx(math.sqrt(7.0 / 3.0))  # s^2 = (4 + 1 + 9) / 2 = 7
    assert Estimate.of([5.0]).se == 0.0


def test_the_verdict_is_welchs_test_in_the_metrics_good_direction():
    high, low = (1.0, 1.1, 0.9), (0.0, 0.1, -0.1)
    assert float(ttest_ind(high, low, equal_var=False).pvalue) < 0.001
    assert verdict(high, low, +1, 0.05) == "better"  # precision-like: higher is better
    assert verdict(high, low, -1, 0.05) == "worse"   # FID-like: lower is better
    overlapping = (0.05, 0.1, -0.05)
    assert float(ttest_ind(overlapping, low, equal_var=False).pvalue) > 0.05
    assert verdict(overlapping, low, +1, 0.05) == "same"


def test_one_replicate_cannot_be_judged_and_exact_values_need_no_test():
    assert verdict((1.0,), (0.0,), +1, 0.05) == "n/a"
    assert verdict((2.0, 2.0), (1.0, 1.0), -1, 0.05) == "worse"
    assert verdict((1.0, 1.0), (1.0, 1.0), -1, 0.05) == "same"


def _row(method: str, precision: tuple[float, ...]) -> Row:
    exact = Estimate.of([50.0] * len(precision))
    return Row(method=method, target="tilted", rho=1.0, psi=None, n=50, seeds=tuple(range(len(precision))),
               sampler="sir", precision=Estimate.of(list(precision)), recall=None, density=None, coverage=None,
               fid=None, kl=None, tv=None, fairness=None, ess=exact, distinct=exact, evaluations=exact,
               log_volume_mean=None, log_volume_std=None, beta=Estimate.of([1.0] * len(precision)), seconds=1.0)


def test_rows_are_compared_with_naive_and_the_markdown_says_so_in_words(tmp_path):
    rows = compared([_row("naive", (0.5, 0.52, 0.48)), _row("magnet", (0.8, 0.82, 0.78)),
                     _row("polarity:-1", (0.5, 0.53, 0.49))], 0.05)
    assert rows[0].versus_naive == {}
    assert rows[1].versus_naive == {"precision": "better"}
    assert rows[2].versus_naive == {"precision": "same"}
    table = Table("toy", tuple(rows), 50, (0, 1, 2), "a real set", "pixels", None, None, 0.05)
    text = markdown(table)
    assert "| magnet | rho = +1 | 0.800 ± 0.012 ▲ |" in text
    assert "- **polarity:-1**: does not beat naive on any metric" in text
    assert "- **magnet**: beats naive on precision" in text
    json_path, _ = table.write(tmp_path)
    stored = json.loads(json_path.read_text())
    assert stored["rows"][1]["precision"]["values"] == [0.8, 0.82, 0.78]
    assert stored["rows"][1]["recall"] is None
