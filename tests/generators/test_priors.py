import math

import pytest
import torch
from scipy import stats

from gendebias.errors import GeneratorSpecError
from gendebias.generators import StandardNormal, TruncatedNormal, UniformBox, make_prior


def test_standard_normal_log_prob_matches_scipy():
    latents = torch.randn(5, 3, dtype=torch.float64)
    expected = stats.multivariate_normal(mean=[0, 0, 0]).logpdf(latents.numpy())
    torch.testing.assert_close(StandardNormal().log_prob(latents), torch.as_tensor(expected), rtol=1e-12, atol=0)


def test_uniform_box_samples_inside_and_has_the_box_density():
    prior = UniformBox(low=-2.0, high=1.0)
    latents = prior.sample(20_000, (2,), seed=0, dtype=torch.float64)
    assert latents.min() >= -2 and latents.max() <= 1
    assert stats.kstest(latents[:, 0].numpy(), stats.uniform(loc=-2, scale=3).cdf).pvalue > 0.01
    log_prob = prior.log_prob(torch.tensor([[0.0, 0.0], [1.5, 0.0]]))
    assert log_prob[0] == pytest.approx(-2 * math.log(3)) and log_prob[1] == -math.inf


def test_truncated_normal_matches_scipy_in_distribution_and_density():
    prior = TruncatedNormal(bound=1.5)
    latents = prior.sample(20_000, (1,), seed=1, dtype=torch.float64)
    reference = stats.truncnorm(-1.5, 1.5)
    assert stats.kstest(latents[:, 0].numpy(), reference.cdf).pvalue > 0.01
    points = torch.tensor([[0.3], [-1.2], [1.6]], dtype=torch.float64)
    expected = torch.as_tensor(reference.logpdf(points[:, 0].numpy()))
    torch.testing.assert_close(prior.log_prob(points)[:2], expected[:2], rtol=1e-12, atol=0)
    assert prior.log_prob(points)[2] == -math.inf


def test_same_seed_same_latents():
    for prior in (StandardNormal(), UniformBox(), TruncatedNormal()):
        assert torch.equal(prior.sample(4, (3,), seed=7), prior.sample(4, (3,), seed=7))
        assert not torch.equal(prior.sample(4, (3,), seed=7), prior.sample(4, (3,), seed=8))


def test_make_prior_from_specs_and_bad_specs():
    assert make_prior(None) == StandardNormal()
    assert make_prior({"name": "uniform", "low": 0, "high": 2}) == UniformBox(0, 2)
    with pytest.raises(GeneratorSpecError, match=r"unknown prior 'cauchy'; choose one of \['normal', 'uniform'"):
        make_prior("cauchy")
    with pytest.raises(GeneratorSpecError, match="bad options for prior 'uniform'"):
        make_prior({"name": "uniform", "width": 3})
    with pytest.raises(GeneratorSpecError, match="low < high"):
        make_prior({"name": "uniform", "low": 1, "high": 1})


def test_uniform_ball_is_uniform_in_the_ball():
    from gendebias.generators import UniformBall

    prior = UniformBall(radius=2.0)
    latents = prior.sample(20_000, (3,), seed=0, dtype=torch.float64)
    radii = latents.norm(dim=1)
    assert radii.max() <= 2.0
    # uniform in a 3-ball: P(|z| <= r) = (r / R)^3
    assert stats.kstest((radii / 2.0).numpy() ** 3, "uniform").pvalue > 0.01
    log_prob = prior.log_prob(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 2.5]]))
    assert log_prob[0] == pytest.approx(-math.log(4 / 3 * math.pi * 8)) and log_prob[1] == -math.inf
