"""Delayed-acceptance gpCN moves: exact for any fixed surrogate, exact evaluations only for proposals that pass the
surrogate's screen, and exact acceptance where the surrogate predicts badly."""

import math

import torch
from torch import nn

from gendebias.generators import Generator
from gendebias.geometry.kernels import (
    Particles,
    TemperedTarget,
    ensemble_sweep,
    metropolis_sweep,
    prior_reference,
)
from gendebias.geometry.surrogate import Surrogate


def hinge_target(gains):
    """``(z, relu(z))`` with the analytic log-volume ``sum_j gain_j [z_j > 0]``: tilted, rho = 1, each coordinate
    positive with probability ``c_j / (1 + c_j)``, ``c_j = exp(gain_j)``."""
    gains = torch.tensor(gains, dtype=torch.float64)
    generator = Generator(nn.Identity(), latent_shape=(gains.shape[0],), dtype=torch.float64)
    target = TemperedTarget(generator, 1.0, "tilted", log_volume_function=lambda z: (z > 0).double() @ gains)
    return target, torch.sigmoid(gains)


def exact_draws(shares, count, seed):
    """``count`` draws of the tilted hinge target: ``|N(0, 1)|`` with a sign that is positive w.p. ``shares``."""
    random = torch.Generator().manual_seed(seed)
    sizes = torch.randn(count, shares.shape[0], generator=random, dtype=torch.float64).abs()
    positive = torch.rand(count, shares.shape[0], generator=random, dtype=torch.float64) < shares
    return torch.where(positive, sizes, -sizes)


def particles_of(target, latents):
    return Particles(latents, target.log_volumes(latents), target.log_base(latents))


def test_a_deliberately_wrong_surrogate_leaves_the_exact_target_invariant():
    target, shares = hinge_target([1.0, 2.0])
    # the screen alone would target N(-3, 1) x N(2.5, 1): positive shares 0.001 and 0.99, not 0.73 and 0.88
    wrong = Surrogate(torch.zeros(2, dtype=torch.float64), torch.tensor([-3.0, 2.5], dtype=torch.float64), 0.0, 9.9)
    particles = particles_of(target, exact_draws(shares, 4000, seed=0))
    random = torch.Generator().manual_seed(1)
    for _ in range(30):
        particles, _ = metropolis_sweep(target, particles, 1.0, 0.6, prior_reference(2), random, wrong)
    positive = (particles.latents > 0).double().mean(dim=0)
    error = torch.sqrt(shares * (1 - shares) / 4000)  # each particle's latest state is an exact draw
    assert bool(((positive - shares).abs() < 3 * error).all()), (positive, shares)
    assert torch.equal(particles.log_volumes, (particles.latents > 0).double() @ torch.tensor([1.0, 2.0],
                                                                                            dtype=torch.float64))


def test_with_an_exact_surrogate_only_the_accepted_proposals_are_evaluated():
    # the second stage's ratio is exp(0): every proposal that passes the screen is accepted, so the exact
    # evaluations of the sweep are its first-stage passes are its acceptances
    weights = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    generator = Generator(nn.Identity(), latent_shape=(3,), dtype=torch.float64)
    target = TemperedTarget(generator, 1.0, "tilted", log_volume_function=lambda z: z @ weights)
    particles = particles_of(target, generator.sample_latents(500, seed=0))
    exact = Surrogate(torch.zeros(3, dtype=torch.float64), weights, 0.0, 0.0)
    before = target.evaluations
    _, accepted = metropolis_sweep(target, particles, 1.0, 0.9, prior_reference(3), torch.Generator().manual_seed(2),
                                   exact)
    assert target.evaluations - before == int(accepted.sum())
    assert 0 < int(accepted.sum()) < 400


def test_a_delayed_sweep_evaluates_exactly_what_passes_the_screen():
    target, shares = hinge_target([1.2] * 8)
    particles = particles_of(target, exact_draws(shares, 400, seed=3))
    halves = torch.arange(400) % 2 == 0
    evaluated = []
    inner = target.log_volume_function

    def recording(latents):
        evaluated.append(latents.shape[0])
        return inner(latents)

    target.log_volume_function = recording
    before = target.evaluations
    moved, accepted = ensemble_sweep(target, particles, 1.0, 0.5, halves, torch.Generator().manual_seed(4),
                                     acceptance="delayed")
    assert target.evaluations - before == sum(evaluated)
    assert int(accepted.sum()) <= sum(evaluated) < 400  # the screen passed fewer than all, the exact stage fewer
    changed = (moved.latents != particles.latents).any(dim=1)
    assert torch.equal(changed, accepted)


def test_a_poor_surrogate_falls_back_to_exact_acceptance():
    target, shares = hinge_target([1.2] * 8)
    particles = particles_of(target, exact_draws(shares, 400, seed=5))
    halves = torch.arange(400) % 2 == 0
    # the linear fit to a sum of steps errs by about a nat at beta = 1; a limit of 0.1 nats refuses it
    results = []
    for acceptance, limit in (("exact", math.inf), ("delayed", 0.1)):
        before = target.evaluations
        results.append(ensemble_sweep(target, particles, 1.0, 0.5, halves, torch.Generator().manual_seed(6),
                                      acceptance=acceptance, residual_limit=limit))
        assert target.evaluations - before == 400
    assert torch.equal(results[0][0].latents, results[1][0].latents)
    assert torch.equal(results[0][1], results[1][1])
    # at beta = 0.05 the same surrogate's error is 20 times smaller and it is used
    before = target.evaluations
    ensemble_sweep(target, particles, 0.05, 0.5, halves, torch.Generator().manual_seed(6), acceptance="delayed",
                   residual_limit=0.1)
    assert target.evaluations - before < 400
