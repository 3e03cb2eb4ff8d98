"""Kernel Inception Distance: zero for one distribution, the moment-tensor closed form for a shift, weights."""

import pytest
import torch

from gendebias.errors import InvalidArgumentError
from gendebias.evaluation import kernel_inception_distance
from gendebias.evaluation.kernel_distance import squared_mmd

from .conftest import gaussians


def shifted_gaussian_mmd(features, delta):
    """Exact MMD^2 of the cubic kernel between ``N(0, I)`` and ``N(delta e_1, I)`` in ``F = features`` dimensions.

    ``(a.b / F + 1)^3`` expands into moment tensors (module docstring). Here ``M1`` differs by ``delta e_1``,
    ``M2 = I + mu mu^T`` by ``delta^2 e_1 e_1^T``, and ``M3 = mu^(x3) + sym(mu (x) I)`` (zero for ``N(0, I)``) has
    squared norm ``delta^6 + 6 delta^4 + (3 F + 6) delta^2``.
    """
    third = delta**6 + 6 * delta**4 + (3 * features + 6) * delta**2
    return third / features**3 + 3 * delta**4 / features**2 + 3 * delta**2 / features


def test_one_distribution_gives_zero_within_the_spread():
    real, generated = gaussians(2000, 2000, 4, seed=1)
    result = kernel_inception_distance(real, generated, subsets=20, subset_size=1000, seed=0)
    assert result.subsets == 20 and result.subset_size == 1000
    assert abs(result.value) < 2 * result.std


def test_a_shift_gives_the_closed_form_within_the_spread():
    """Across 10 seeds at this size, the subset standard deviation (0.03-0.05) matched the spread of the estimate
    itself (0.04), so three of them bound the error."""
    real, generated = gaussians(2000, 2000, 4, seed=2)
    generated[:, 0] += 0.5
    result = kernel_inception_distance(real, generated, subsets=20, subset_size=1000, seed=0)
    assert result.value == pytest.approx(shifted_gaussian_mmd(4, 0.5), abs=3 * result.std)
    assert result.value > 4 * result.std


def test_squared_mmd_is_the_weighted_u_statistic_written_out():
    real, generated = gaussians(7, 6, 3, seed=3)
    weights = torch.tensor([0.5, 2.0, 1.0, 0.1, 3.0, 1.5], dtype=torch.float64)

    def kern(a, b):
        return (float(a @ b) / 3 + 1) ** 3

    real_term = sum(kern(real[i], real[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    pairs = [(i, j) for i in range(6) for j in range(6) if i != j]
    generated_term = (sum(weights[i] * weights[j] * kern(generated[i], generated[j]) for i, j in pairs)
                      / sum(weights[i] * weights[j] for i, j in pairs))
    cross = sum(weights[j] * kern(real[i], generated[j]) for i in range(7) for j in range(6)) / (7 * weights.sum())
    expected = real_term + generated_term - 2 * cross
    assert float(squared_mmd(real, generated, weights)) == pytest.approx(float(expected), rel=1e-12)


def test_uniform_weights_reproduce_the_unweighted_value():
    real, generated = gaussians(200, 150, 4, shift=0.3, seed=4)
    unweighted = kernel_inception_distance(real, generated, subsets=5, subset_size=100, seed=1)
    assert kernel_inception_distance(real, generated, weights=torch.ones(150), subsets=5, subset_size=100,
                                     seed=1) == unweighted
    constant = kernel_inception_distance(real, generated, weights=torch.full((150,), 0.2), subsets=5,
                                         subset_size=100, seed=1)
    assert constant == unweighted


def test_importance_weights_recover_the_target_distribution():
    real, generated = gaussians(2000, 4000, 4, seed=5)
    real[:, 0] += 0.5
    weights = torch.exp(0.5 * generated[:, 0] - 0.125)  # N(0, I) -> N(0.5 e_1, I)
    naive = kernel_inception_distance(real, generated, subsets=20, subset_size=1000)
    weighted = kernel_inception_distance(real, generated, weights=weights, subsets=20, subset_size=1000)
    assert naive.value > 4 * naive.std
    assert abs(weighted.value) < 2 * weighted.std


def test_subsets_larger_than_the_data_are_refused_with_the_size_that_fits():
    real, generated = gaussians(50, 80, 3)
    with pytest.raises(InvalidArgumentError, match="subset_size=50 or fewer"):
        kernel_inception_distance(real, generated)
    weights = torch.zeros(80)
    weights[:30] = 1.0
    with pytest.raises(InvalidArgumentError, match="subset_size=30 or fewer"):
        kernel_inception_distance(real, generated, weights=weights)


def test_the_seed_decides_the_subsets():
    real, generated = gaussians(200, 200, 3, shift=0.2, seed=6)
    first = kernel_inception_distance(real, generated, subsets=3, subset_size=50, seed=7)
    assert kernel_inception_distance(real, generated, subsets=3, subset_size=50, seed=7) == first
    assert kernel_inception_distance(real, generated, subsets=3, subset_size=50, seed=8) != first
    with pytest.raises(InvalidArgumentError, match="seed"):
        kernel_inception_distance(real, generated, subsets=3, subset_size=50, seed=-1)
