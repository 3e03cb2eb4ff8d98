"""Balance metrics: hand-computed KL, total variation and fairness discrepancy; weighted class distributions."""

import math

import numpy as np
import pytest
import torch

from gendebias.errors import InvalidArgumentError
from gendebias.evaluation import balance, class_distribution, fairness_discrepancy, kl_divergence, total_variation
from gendebias.generators.zoo.evaluation import kl_to_uniform


def test_a_half_quarter_quarter_split_against_uniform():
    """p = (1/2, 1/4, 1/4), t = 1/3 each: KL = 1/2 log(3/2) + 1/2 log(3/4) = 1/2 log(9/8);
    TV = 1/2 (1/6 + 1/12 + 1/12) = 1/6; L2 = sqrt(1/36 + 2/144) = sqrt(1/24)."""
    shares = torch.tensor([0.5, 0.25, 0.25])
    assert kl_divergence(shares) == pytest.approx(0.5 * math.log(9 / 8), rel=1e-12)
    assert total_variation(shares) == pytest.approx(1 / 6, rel=1e-12)
    assert fairness_discrepancy(shares) == pytest.approx(math.sqrt(1 / 24), rel=1e-12)
    assert kl_divergence([2, 1, 1]) == pytest.approx(kl_divergence(shares), rel=1e-12)  # counts are normalised


@pytest.mark.parametrize("classes", [2, 10])
def test_one_class_against_uniform(classes):
    one_hot = torch.nn.functional.one_hot(torch.tensor(0), classes)
    assert kl_divergence(one_hot) == pytest.approx(math.log(classes), rel=1e-12)
    assert total_variation(one_hot) == pytest.approx(1 - 1 / classes, rel=1e-12)
    assert fairness_discrepancy(one_hot) == pytest.approx(math.sqrt((classes - 1) / classes), rel=1e-12)


def test_against_a_given_target():
    """p = (0.2, 0.8), t = (0.5, 0.5)... and t = (0.25, 0.75): KL = 0.2 log 0.8 + 0.8 log(16/15)."""
    shares, target = np.array([0.2, 0.8]), np.array([0.25, 0.75])
    assert kl_divergence(shares, target) == pytest.approx(0.2 * math.log(0.8) + 0.8 * math.log(16 / 15), rel=1e-12)
    assert total_variation(shares, target) == pytest.approx(0.05, rel=1e-12)
    assert fairness_discrepancy(shares, target) == pytest.approx(math.sqrt(2) * 0.05, rel=1e-12)
    assert kl_divergence(shares, shares) == 0.0 and total_variation(shares, shares) == 0.0
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))  # 0 log 0 = 0


def test_kl_agrees_with_the_zoo_histogram_helper():
    histogram = torch.tensor([5, 0, 3, 9, 1, 1, 0, 2, 7, 4])
    assert kl_divergence(histogram) == pytest.approx(kl_to_uniform(histogram), rel=1e-12)


def test_class_distribution_of_labels_and_probabilities():
    labels = torch.tensor([0, 0, 1, 3])
    torch.testing.assert_close(class_distribution(labels, classes=4), torch.tensor([0.5, 0.25, 0.0, 0.25]).double())
    probabilities = torch.tensor([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7]])
    torch.testing.assert_close(class_distribution(probabilities), torch.tensor([0.3, 0.35, 0.35]).double())


def test_weighted_class_distribution():
    labels = np.array([0, 0, 1])
    assert class_distribution(labels, classes=2, weights=torch.tensor([1.0, 1.0, 2.0])).tolist() == [0.5, 0.5]
    probabilities = torch.tensor([[1.0, 0.0], [0.2, 0.8]])
    torch.testing.assert_close(class_distribution(probabilities, weights=[3.0, 1.0]),
                               torch.tensor([0.8, 0.2]).double())


def test_uniform_and_integer_weights():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (200,), generator=generator)
    unweighted = balance(labels, classes=5)
    ones = balance(labels, classes=5, weights=torch.ones(200))
    assert torch.equal(ones.shares, unweighted.shares) and ones[1:] == unweighted[1:]
    constant = balance(labels, classes=5, weights=torch.full((200,), 0.3))
    assert torch.equal(constant.shares, unweighted.shares) and constant[1:] == unweighted[1:]
    counts = torch.randint(0, 4, (200,), generator=generator)
    weighted = balance(labels, classes=5, weights=counts.double())
    duplicated = balance(labels.repeat_interleave(counts), classes=5)
    torch.testing.assert_close(weighted.shares, duplicated.shares, rtol=1e-12, atol=0)
    assert weighted.fairness_discrepancy == pytest.approx(duplicated.fairness_discrepancy, rel=1e-12)


def test_balance_bundles_the_three_distances():
    result = balance(torch.tensor([0, 0, 1, 2]), classes=3, target=[0.5, 0.25, 0.25])
    assert result.shares.tolist() == [0.5, 0.25, 0.25]
    assert result.kl_divergence == 0.0 and result.total_variation == 0.0 and result.fairness_discrepancy == 0.0


def test_bad_inputs_are_refused_with_a_fix():
    with pytest.raises(InvalidArgumentError, match="classes=K"):
        class_distribution(torch.tensor([0, 1]))
    with pytest.raises(InvalidArgumentError, match=r"0\.\.2"):
        class_distribution(torch.tensor([0, 3]), classes=3)
    with pytest.raises(InvalidArgumentError, match="softmax"):
        class_distribution(torch.tensor([[2.0, -1.0]]))
    with pytest.raises(InvalidArgumentError, match="shares have 2"):
        kl_divergence([0.5, 0.5], [0.2, 0.3, 0.5])
