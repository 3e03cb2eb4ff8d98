"""Fréchet distance: the closed form on exact moments, sampling error on Gaussians, the weighted definition."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from gendebias.errors import DegenerateWeightsError
from gendebias.evaluation import frechet_distance

from .conftest import gaussians


def closed_form(mean_a, covariance_a, mean_b, covariance_b):
    """``||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2)`` with scipy's general ``sqrtm`` (an independent
    route to the matrix square root)."""
    root = scipy.linalg.sqrtm(covariance_a @ covariance_b).real
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(covariance_a + covariance_b - 2 * root))


def with_exact_moments(mean, covariance, n, seed):
    """``(n, F)`` samples whose sample mean and covariance (``N - 1``) are exactly ``mean`` and ``covariance``."""
    noise = torch.randn(n, len(mean), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    noise -= noise.mean(dim=0)
    noise = noise @ torch.linalg.inv(torch.linalg.cholesky(noise.T @ noise / (n - 1))).T  # sample covariance I
    return torch.as_tensor(mean) + noise @ torch.linalg.cholesky(torch.as_tensor(covariance)).T


def random_covariance(features, seed):
    generator = np.random.default_rng(seed)
    factor = generator.normal(size=(features, features))
    return factor @ factor.T / features + 0.1 * np.eye(features)


def test_frechet_distance_of_exact_moments_is_the_closed_form():
    """Non-commuting covariances, so the symmetric square root route is really tested against ``sqrtm(S_a S_b)``."""
    mean_a, mean_b = np.zeros(6), np.linspace(-1.0, 1.0, 6)
    covariance_a, covariance_b = random_covariance(6, 0), random_covariance(6, 1)
    real = with_exact_moments(mean_a, covariance_a, 300, seed=2)
    generated = with_exact_moments(mean_b, covariance_b, 200, seed=3)
    expected = closed_form(mean_a, covariance_a, mean_b, covariance_b)
    assert frechet_distance(real, generated) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(real.numpy(), generated.float()) == pytest.approx(expected, rel=1e-5)


def test_identical_sets_are_at_distance_zero_even_when_rank_deficient():
    real, _ = gaussians(10, 1, 32)  # 10 samples in 32-D: a singular covariance
    assert frechet_distance(real, real.clone()) == pytest.approx(0.0, abs=1e-10)


def test_two_gaussians_give_the_closed_form_within_sampling_error():
    """Real ``N(0, I)``, generated ``N(delta, diag(s^2))`` in 4-D, ``n = m = 20,000``: exact
    ``d^2 = ||delta||^2 + sum_i (1 - s_i)^2``.

    Tolerance, from the sampling distribution of the plug-in estimator. Mean term: the difference of sample means is
    ``delta + e`` with ``e ~ N(0, C)``, ``C = (I + diag(s^2)) / n``, so ``||.||^2`` has bias ``tr C`` and variance
    ``4 delta^T C delta + 2 tr C^2``. Covariance term (diagonal here, to first order):
    ``sum_i (sigma_ri - sigma_gi)^2`` with sample variances of variance ``2 sigma^4 / (n - 1)``, so variance
    ``sum_i 2 (1 - s_i)^2 (1 + s_i^2) / (n - 1)``. Its bias is second order, from the noise in the ``F (F + 1) / 2``
    free covariance entries: ``F (F + 1) sigma^2 / (2 n)`` for two sample covariances of ``sigma^2 I``, so we allow
    ``F (F + 1) max(s)^2 / (2 n)``. Sample means and covariances of Gaussians are independent, so the two variances
    add: ``|error| <= bias + 5 sd``.
    """
    n, s = 20_000, torch.tensor([0.5, 1.0, 1.5, 2.0], dtype=torch.float64)
    delta = torch.tensor([1.0, 0.0, 0.0, 0.5], dtype=torch.float64)
    generator = torch.Generator().manual_seed(7)
    real = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    generated = torch.randn(n, 4, generator=generator, dtype=torch.float64) * s + delta
    exact = float((delta**2).sum() + ((1 - s) ** 2).sum())
    spread = (1 + s**2) / n
    variance = (4 * (delta**2 * spread).sum() + 2 * (spread**2).sum()
                + (2 * (1 - s) ** 2 * (1 + s**2)).sum() / (n - 1))
    bias = float(spread.sum()) + 4 * 5 / 2 * float(s.max() ** 2) / n
    tolerance = bias + 5 * math.sqrt(float(variance))
    assert tolerance < 0.07 * exact  # tight enough to catch a wrong term
    assert frechet_distance(real, generated) == pytest.approx(exact, abs=tolerance)


def test_weighted_moments_are_numpys_reliability_weighted_ones():
    real, generated = gaussians(300, 200, 5, shift=0.3, seed=8)
    weights = torch.rand(200, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    weights[:20] = 0.0
    y, w = generated.numpy(), weights.numpy()
    expected = closed_form(real.numpy().mean(axis=0), np.cov(real.numpy(), rowvar=False),
                           np.average(y, axis=0, weights=w), np.cov(y, rowvar=False, aweights=w))
    assert frechet_distance(real, generated, weights=weights, chunk_size=33) == pytest.approx(expected, rel=1e-9)


def test_uniform_weights_reproduce_the_unweighted_value():
    real, generated = gaussians(300, 200, 5, shift=0.3, seed=10)
    unweighted = frechet_distance(real, generated)
    assert frechet_distance(real, generated, weights=torch.ones(200)) == unweighted
    assert frechet_distance(real, generated, weights=np.full(200, 3.7)) == unweighted


def test_importance_weights_recover_the_target_distribution():
    """Proposal ``N(0, I)``, target ``N(delta, I)``: weights ``exp(delta . y - |delta|^2 / 2)`` make the generated set
    stand for the target, so its distance to a real sample of the target falls to sampling error."""
    delta = torch.tensor([0.5, 0.0], dtype=torch.float64)
    real, generated = gaussians(20_000, 20_000, 2, seed=11)
    real += delta
    weights = torch.exp(generated @ delta - (delta @ delta) / 2)
    assert frechet_distance(real, generated) == pytest.approx(0.25, abs=0.03)
    assert frechet_distance(real, generated, weights=weights) < 0.01


def test_one_positive_weight_has_no_covariance():
    real, generated = gaussians(10, 10, 3)
    with pytest.raises(DegenerateWeightsError, match="two"):
        frechet_distance(real, generated, weights=torch.eye(10)[0])
