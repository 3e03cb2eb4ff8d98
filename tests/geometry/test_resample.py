import math

import pytest
import torch
from scipy import stats

from gendebias.errors import InvalidArgumentError
from gendebias.geometry import rejection_sample, resample

SCHEMES = ["multinomial", "systematic", "without_replacement", "rejection"]


def heavy_pool(size=1000, heavy=20, ratio=100.0):
    """``heavy`` latents of weight ``ratio``, the rest weight 1; returns log weights and the heavy items' mass."""
    weights = torch.ones(size, dtype=torch.float64)
    weights[:heavy] = ratio
    return weights.log(), heavy * ratio / (heavy * ratio + size - heavy)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_same_seed_same_indices_and_other_seed_other_indices(scheme):
    log_w = 0.3 * torch.randn(500, dtype=torch.float64)
    first = resample(log_w, 50, scheme=scheme, seed=3)
    assert first.dtype == torch.int64 and first.shape == (50,)
    assert torch.equal(first, resample(log_w, 50, scheme=scheme, seed=3))
    assert not torch.equal(first, resample(log_w, 50, scheme=scheme, seed=4))


@pytest.mark.parametrize("scheme", ["multinomial", "systematic", "rejection"])
def test_unbiased_schemes_match_the_weights(scheme):
    log_w = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)).repeat(5000)
    counts = torch.bincount(resample(log_w, 4000, scheme=scheme, seed=1) % 4, minlength=4)
    expected = torch.tensor([0.1, 0.2, 0.3, 0.4]) * 4000
    assert stats.chisquare(counts.numpy(), expected.numpy()).pvalue > 0.01


def test_without_replacement_is_biased_at_half_the_pool_and_multinomial_is_not():
    """Why both exist: Gumbel-top-k never repeats a latent (diverse; what the published code does), so drawing half
    the pool caps the heavy latents at one copy each and their share falls far below their mass."""
    log_w, heavy_mass = heavy_pool()
    n, repeats = 500, 40
    shares = {"multinomial": [], "without_replacement": []}
    for seed in range(repeats):
        for scheme in shares:
            shares[scheme].append(int((resample(log_w, n, scheme=scheme, seed=seed) < 20).sum()) / n)
    standard_error = math.sqrt(heavy_mass * (1 - heavy_mass) / (n * repeats))
    assert abs(sum(shares["multinomial"]) / repeats - heavy_mass) < 3 * standard_error
    without = sum(shares["without_replacement"]) / repeats
    assert max(shares["without_replacement"]) * n <= 20, "at most one copy of each heavy latent"
    assert heavy_mass - without > 20 * standard_error


def test_without_replacement_never_repeats_and_skips_zero_weights():
    log_w = torch.zeros(100, dtype=torch.float64)
    log_w[::2] = -math.inf
    indices = resample(log_w, 50, scheme="without_replacement", seed=0)
    assert indices.unique().shape[0] == 50 and bool((indices % 2 == 1).all())
    with pytest.raises(InvalidArgumentError, match="cannot draw n=51 distinct latents from a pool with 50"):
        resample(log_w, 51, scheme="without_replacement", seed=0)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_zero_weight_latents_are_never_drawn(scheme):
    log_w = torch.full((1000,), -math.inf, dtype=torch.float64)
    log_w[-3:] = 0.0  # the trailing entries carry all the mass; the inverse CDF must not fall off the end
    assert bool((resample(log_w, 3, scheme=scheme, seed=5) >= 997).all())


def test_rejection_reports_its_acceptance_rate_and_checks_its_bound():
    log_w, _ = heavy_pool(size=10000, heavy=100, ratio=10.0)
    result = rejection_sample(log_w, 100, seed=2)
    expected_rate = float(log_w.exp().mean() / 10.0)  # mean weight / max weight = 0.109
    assert result.bound_estimated and result.log_bound == pytest.approx(math.log(10.0))
    assert abs(result.acceptance_rate - expected_rate) < 3 * math.sqrt(expected_rate / 10000)
    assert result.indices.unique().shape[0] == 100
    loose = rejection_sample(log_w, 100, log_bound=math.log(20.0), seed=2)
    assert not loose.bound_estimated and loose.acceptance_rate < result.acceptance_rate
    with pytest.raises(InvalidArgumentError, match="is not a bound"):
        rejection_sample(log_w, 10, log_bound=0.0, seed=2)
    with pytest.raises(InvalidArgumentError, match=r"acceptance rate 0\.10.*pass about \d+ proposals"):
        rejection_sample(log_w, 5000, seed=2)


@pytest.mark.parametrize(
    ("log_w", "n", "kwargs", "message"),
    [
        (torch.zeros(3), -1, {}, "n must be a non-negative int"),
        (torch.zeros(3), 2, {"scheme": "stratified"}, "unknown scheme 'stratified'"),
        (torch.zeros(3), 2, {"seed": -4}, "seed must be an int"),
        (torch.tensor([0.0, math.nan]), 2, {}, "no NaN"),
        (torch.zeros(0), 2, {}, "non-empty 1-D"),
    ],
)
def test_bad_arguments_are_refused(log_w, n, kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        resample(log_w, n, **kwargs)


def test_rejection_says_how_many_proposals_it_would_need():
    log_w = torch.tensor([0.0] * 3 + [-math.inf] * 7, dtype=torch.float64)  # 3 always accepted, 7 never
    exact = rejection_sample(log_w, 3, log_bound=0.0, seed=0)  # a bound equal to the largest weight is valid
    assert exact.acceptance_rate == 0.3 and exact.indices.tolist() == [0, 1, 2] and not exact.bound_estimated
    # n / rate with a 10% margin: int(5 / 0.3 * 1.1) + 1
    with pytest.raises(InvalidArgumentError, match=r"accepted 3 of 10 proposals \(acceptance rate 0\.3\) but n=5 "
                                                   r"were asked for; pass about 19 proposals$"):
        rejection_sample(log_w, 5, log_bound=0.0, seed=0)
    with pytest.raises(InvalidArgumentError, match=r"rate 0\) but n=1 were asked for; pass an unbounded number of "
                                                   r"proposals$"):
        rejection_sample(torch.zeros(10, dtype=torch.float64), 1, log_bound=800.0, seed=0)


def test_rejection_sample_draws_from_its_seed_only():
    log_w, _ = heavy_pool(size=2000, heavy=100, ratio=10.0)
    torch.manual_seed(0)
    first = rejection_sample(log_w, 50, seed=7).indices
    torch.manual_seed(1)  # the global generator must not matter
    assert torch.equal(rejection_sample(log_w, 50, seed=7).indices, first)


def test_without_replacement_is_gumbel_top_k_on_the_seeded_float64_uniforms():
    log_w = torch.log(torch.tensor([0.5, 0.2, 0.1, 0.1, 0.05, 0.05], dtype=torch.float64))
    uniforms = torch.rand(6, dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    expected = torch.topk(log_w - torch.log(-torch.log(uniforms)), 3).indices
    assert torch.equal(resample(log_w, 3, scheme="without_replacement", seed=11), expected)


def test_one_draw_without_replacement_is_an_exact_categorical_draw():
    probabilities = torch.tensor([0.6, 0.25, 0.1, 0.05], dtype=torch.float64)
    draws = torch.stack([resample(probabilities.log(), 1, scheme="without_replacement", seed=seed)
                         for seed in range(4000)]).flatten()
    shares = torch.bincount(draws, minlength=4).double() / 4000
    errors = (probabilities * (1 - probabilities) / 4000).sqrt()
    assert bool(((shares - probabilities).abs() < 3 * errors).all()), f"shares {shares.tolist()}"


def test_without_replacement_says_what_to_use_instead():
    with pytest.raises(InvalidArgumentError, match=r"n=3 distinct latents from a pool with 2 of positive weight; "
                                                   r"use a larger pool or scheme='multinomial'$"):
        resample(torch.tensor([0.0, 0.0, -math.inf]), 3, scheme="without_replacement", seed=0)
