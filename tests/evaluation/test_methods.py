"""The methods of a results table: their names, the truncation trick, and the bounded region of ``uniform``."""

import math

import pytest
import torch
from scipy.stats import chi2

from gendebias.errors import InvalidArgumentError
from gendebias.evaluation.methods import BALL_MASS, Method, bounded_view, draw, parse_method, parse_methods
from gendebias.generators import load_generator
from gendebias.generators.priors import UniformBall


def test_names_parse_to_targets_and_knobs():
    assert parse_method("magnet") == Method("magnet", "sample", "tilted", 1.0)
    assert parse_method("magnet-uniform") == Method("magnet-uniform", "sample", "uniform", 1.0)
    assert parse_method("polarity:-0.5") == Method("polarity:-0.5", "sample", "tilted", -0.5)
    assert parse_method("truncation:0.70") == Method("truncation:0.7", "truncation", psi=0.7)
    assert parse_method("balanced") == Method("balanced", "sample", "balanced", 1.0)
    assert [method.name for method in parse_methods(["magnet"])] == ["naive", "magnet"]
    for bad in ("polarity", "truncation:1.5", "tilted:nan", "magnet:2", "naive,magnet"):
        with pytest.raises(InvalidArgumentError):
            parse_method(bad)
    with pytest.raises(InvalidArgumentError, match="listed twice"):
        parse_methods(["magnet", "magnet"])


def test_truncation_scales_the_prior_draws_of_the_seed_toward_the_mean():
    generator = load_generator("digits-gan")
    naive = draw(generator, parse_method("naive"), 50, seed=3)
    truncated = draw(generator, parse_method("truncation:0.5"), 50, seed=3)
    assert torch.equal(truncated.latents, 0.5 * naive.latents)
    assert (truncated.ess, truncated.distinct, truncated.evaluations) == (50.0, 50, 0)


def test_the_uniform_targets_ball_holds_99_percent_of_the_normal_prior():
    generator = load_generator("digits-gan")
    view = bounded_view(generator)
    assert isinstance(view.prior, UniformBall)
    assert view.module is generator.module
    assert view.prior.radius == pytest.approx(math.sqrt(chi2.ppf(BALL_MASS, 16)))
    draws = 20_000
    inside = float((generator.sample_latents(draws, seed=0).norm(dim=1) <= view.prior.radius).double().mean())
    assert abs(inside - BALL_MASS) < 3 * math.sqrt(BALL_MASS * (1 - BALL_MASS) / draws)
