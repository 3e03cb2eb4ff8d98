"""The ridge surrogate of the log-volume: exact on a linear log-volume, honest about its error on noise."""

import math

import pytest
import torch
from torch import nn

from gendebias.generators import Generator
from gendebias.geometry.kernels import TemperedTarget
from gendebias.geometry.surrogate import FEWEST_POINTS, fitted_surrogate


def test_a_linear_log_volume_is_recovered_with_a_small_leave_one_out_error():
    random = torch.Generator().manual_seed(0)
    latents = torch.randn(300, 5, generator=random, dtype=torch.float64)
    weights = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0], dtype=torch.float64)
    surrogate = fitted_surrogate(latents, latents @ weights + 7.0)
    assert surrogate is not None
    assert torch.allclose(surrogate.weights, weights, atol=0.05)
    fresh = torch.randn(50, 5, generator=random, dtype=torch.float64)
    assert torch.allclose(surrogate.log_volumes(fresh), fresh @ weights + 7.0, atol=0.2)
    assert surrogate.residual < 0.05


def test_the_leave_one_out_error_is_the_noise_a_surrogate_cannot_predict():
    random = torch.Generator().manual_seed(1)
    latents = torch.randn(400, 10, generator=random, dtype=torch.float64)
    noise = 2.0 * torch.randn(400, generator=random, dtype=torch.float64)
    surrogate = fitted_surrogate(latents, latents[:, 0] + noise)
    assert surrogate is not None
    assert surrogate.residual == pytest.approx(2.0, rel=0.1)


def test_copies_and_infinite_log_volumes_are_left_out_of_the_fit():
    random = torch.Generator().manual_seed(2)
    latents = torch.randn(FEWEST_POINTS - 1, 3, generator=random, dtype=torch.float64)
    values = latents.sum(dim=1)
    # resampled copies do not count as points, nor do rank-deficient latents
    copies = torch.cat([latents, latents, torch.randn(4, 3, generator=random, dtype=torch.float64)])
    assert fitted_surrogate(copies, torch.cat([values, values, torch.full((4,), -math.inf)])) is None
    more = torch.randn(20, 3, generator=random, dtype=torch.float64)
    surrogate = fitted_surrogate(torch.cat([more, more]), torch.cat([more.sum(dim=1), more.sum(dim=1)]))
    assert surrogate is not None and math.isfinite(surrogate.residual)


class Hinge(nn.Module):
    """``(z, relu(z))`` in 16 dimensions; its log-volume is supplied per test."""

    def forward(self, latents):
        return torch.cat([latents, torch.relu(latents)], dim=1)


GENERATOR = Generator(Hinge(), latent_shape=(16,), dtype=torch.float64)


def hinge_target(log_volumes=lambda z: 1.2 * (z > 0).double().sum(1)):
    """Log-volume 1.2 per positive coordinate by default: a step no linear function of z follows, linear in the
    relu's activation pattern."""
    return TemperedTarget(GENERATOR, 1.0, "tilted", log_volume_function=log_volumes)


def test_the_activation_pattern_makes_the_surrogate_of_a_piecewise_affine_generator_exact_where_it_is_additive():
    goal = hinge_target()
    latents = GENERATOR.sample_latents(100, seed=0)
    features = goal.features(latents)  # the latents, then the pattern
    assert features.shape == (100, 32) and torch.equal(features[:, 16:], (latents > 0).double())
    assert torch.equal(features[:, :16], latents)
    linear = fitted_surrogate(latents, goal.log_volumes(latents))
    patterned = fitted_surrogate(features, goal.log_volumes(latents), split=16)
    assert linear.residual > 1.0 and patterned.residual < 0.1 * linear.residual


def test_the_pattern_is_offered_only_with_as_many_points_as_latent_dimensions_and_the_simplest_fit_wins_ties():
    goal = hinge_target()
    few, many = GENERATOR.sample_latents(15, seed=1), GENERATOR.sample_latents(60, seed=2)
    assert fitted_surrogate(goal.features(few), goal.log_volumes(few), split=16).columns == (0, 16)
    assert fitted_surrogate(goal.features(many), goal.log_volumes(many), split=16).columns == (16, None)
    # a log-volume linear in the latents: the pattern adds nothing, and the latents alone are kept
    linear = hinge_target(lambda z: z[:, :3].sum(1).double())
    assert fitted_surrogate(linear.features(many), linear.log_volumes(many), split=16).columns == (0, 16)
