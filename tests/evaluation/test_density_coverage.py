"""Density and coverage: known answers, the weighted definition and chunking."""

import math

import pytest
import torch

from gendebias.evaluation import density_coverage

from .conftest import dense_radii, dense_squared_distances, gaussians


def dense_density_coverage(real, generated, k, weights=None):
    """The module docstring's weighted definition, on a whole distance matrix (float64)."""
    m = generated.shape[0]
    counts = torch.ones(m, dtype=torch.float64) if weights is None else weights * (m / weights.sum())
    inside = (dense_squared_distances(generated, real) <= dense_radii(real, k)[None, :]).double()
    density = float(counts @ inside.sum(dim=1)) / (k * m)
    return density, float(((counts @ inside) >= 1 - 1e-9).double().mean())


def test_identical_sets_have_full_coverage_and_density_k_plus_one_over_k():
    """Each real ball holds its centre and its k neighbours, so identical sets give density (k + 1) / k exactly."""
    real, _ = gaussians(500, 1, 8)
    assert density_coverage(real, real.clone()) == (6 / 5, 1.0)
    assert density_coverage(real.float(), real.float(), k=3) == (4 / 3, 1.0)


def test_far_apart_sets_have_zero_density_and_coverage():
    real, generated = gaussians(300, 200, 8, shift=100.0)
    assert density_coverage(real, generated) == (0.0, 0.0)


def test_one_distribution_gives_density_one_and_the_expected_coverage():
    """Naeem et al. 2020 (§3.2): for real and generated samples of one distribution, E[density] = 1 and
    E[coverage] = 1 - prod_{i=1..k} (N - i) / (N + M - i). Tolerances: four times the spread of each metric over 30
    seeds at N = M = 1000 in 4-D (0.021 and 0.007), scaled by sqrt(1000 / 2000) for N = M = 2000."""
    real, generated = gaussians(2000, 2000, 4, seed=11)
    density, coverage = density_coverage(real, generated, k=5)
    expected_coverage = 1 - math.prod((2000 - i) / (4000 - i) for i in range(1, 6))
    assert density == pytest.approx(1.0, abs=4 * 0.021 / math.sqrt(2))
    assert coverage == pytest.approx(expected_coverage, abs=4 * 0.007 / math.sqrt(2))


@pytest.mark.parametrize("chunk_size", [7, 64, None])
def test_chunked_result_equals_the_dense_reference(chunk_size):
    real, generated = gaussians(300, 257, 5, shift=0.5, seed=3)
    expected = dense_density_coverage(real, generated, 5)
    assert density_coverage(real, generated, chunk_size=chunk_size) == pytest.approx(expected, abs=1e-12)
    assert 0.2 < expected[0] < 0.95 and 0.2 < expected[1] < 0.95
    weights = torch.rand(257, generator=torch.Generator().manual_seed(4), dtype=torch.float64) ** 3
    weights[::5] = 0.0
    expected = dense_density_coverage(real, generated, 5, weights)
    assert density_coverage(real, generated, weights=weights, chunk_size=chunk_size) == pytest.approx(expected,
                                                                                                       abs=1e-12)


def test_uniform_weights_reproduce_the_unweighted_value():
    real, generated = gaussians(300, 250, 6, shift=0.4, seed=5)
    unweighted = density_coverage(real, generated)
    assert density_coverage(real, generated, weights=torch.ones(250)) == unweighted
    assert density_coverage(real, generated, weights=torch.full((250,), 0.37)) == unweighted


def test_integer_weights_equal_duplicated_samples():
    real, generated = gaussians(300, 250, 6, shift=0.4, seed=6)
    weights = torch.ones(250, dtype=torch.int64)
    weights[0:120:2], weights[1:120:2] = 2, 0  # sums to 250, the pool size
    expected = density_coverage(real, generated.repeat_interleave(weights, dim=0))
    assert density_coverage(real, generated, weights=weights.double()) == pytest.approx(expected, abs=1e-12)
    assert expected != density_coverage(real, generated)


def test_a_ball_holding_less_than_one_samples_worth_is_not_covered():
    real = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]], dtype=torch.float64)
    generated = torch.tensor([[0.5], [10.5]], dtype=torch.float64)
    assert density_coverage(real, generated, k=1).coverage == pytest.approx(4 / 6)
    # expected counts 2 * (0.9, 0.1) = (1.8, 0.2): the second cluster's balls hold a fifth of a sample
    weighted = density_coverage(real, generated, k=1, weights=torch.tensor([0.9, 0.1]))
    assert weighted.coverage == pytest.approx(2 / 6)
    assert weighted.density == pytest.approx((0.9 * 2 + 0.1 * 2) / 1)
