"""The gpCN moves' references: the prior's, for a half with no other particles to fit one to."""

import pytest
import torch
from torch import nn

from gendebias.generators import Generator
from gendebias.geometry.kernels import (
    Particles,
    TemperedTarget,
    correlation_with_start,
    ensemble_sweep,
    prior_reference,
)


def test_the_prior_reference_is_the_standard_normal_in_float64():
    reference = prior_reference(3)
    assert torch.equal(reference.mean, torch.zeros(3, dtype=torch.float64))
    assert torch.equal(reference.factor, torch.ones(3, dtype=torch.float64))


def test_a_half_with_one_particle_to_fit_moves_around_the_prior_and_accepts_every_move_at_beta_zero():
    # plain pCN is reversible for N(0, I) itself: at beta = 0 on a standard normal prior every move is accepted
    generator = Generator(nn.Identity(), latent_shape=(5,), dtype=torch.float64)
    goal = TemperedTarget(generator, 1.0, "tilted", log_volume_function=lambda z: z[:, 0].double())
    latents = generator.sample_latents(2, seed=0)
    particles = Particles(latents, goal.log_volumes(latents), goal.log_base(latents))
    halves = torch.tensor([True, False])  # each half has a single other particle: no Gaussian can be fitted
    moved, accepted = ensemble_sweep(goal, particles, 0.0, 0.5, halves, torch.Generator().manual_seed(1))
    assert bool(accepted.all()) and not bool((moved.latents == latents).any())
    assert torch.equal(moved.log_volumes, moved.latents[:, 0])


def test_the_memory_of_the_start_is_the_log_volume_s_own_where_the_coordinates_forgot():
    # 200 particles whose coordinates were redrawn while their log-volumes stayed: the mean over coordinates and
    # log-volume is about 1/9, the log-volume's own correlation is 1, and the larger one is what counts
    random = torch.Generator().manual_seed(0)
    start = torch.randn(200, 8, generator=random, dtype=torch.float64)
    now = torch.randn(200, 8, generator=random, dtype=torch.float64)
    volumes = torch.randn(200, generator=random, dtype=torch.float64)
    before, after = Particles(start, volumes, volumes), Particles(now, volumes.clone(), volumes)
    assert correlation_with_start(before, after) == pytest.approx(1.0)
    forgot = Particles(now, torch.randn(200, generator=random, dtype=torch.float64), volumes)
    assert abs(correlation_with_start(before, forgot)) < 0.1
    assert correlation_with_start(before, before) == pytest.approx(1.0)
