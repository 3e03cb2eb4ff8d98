"""SIR, SMC and MCMC draw from the debiasing target: checked against exact answers on analytic generators."""

import math

import pytest
import torch
from torch import nn

from gendebias.errors import InvalidArgumentError
from gendebias.generators import Generator, Ramp, Tent, UniformBall, UniformBox
from gendebias.geometry import sample


def box_generator(module, latent_dim=2, prior=None):
    return Generator(module, latent_shape=(latent_dim,), prior=prior or UniformBox(), dtype=torch.float64)


class Hinge(nn.Module):
    """``R^64 -> R^128``: ``(z, a * relu(z))``. ``log_volume = sum_j 1/2 log(1 + a_j^2) [z_j > 0]``, so the tilted
    target (rho = 1, Gaussian prior) has independent coordinates with ``P(z_j > 0) = c_j / (1 + c_j)``,
    ``c_j = sqrt(1 + a_j^2)``: an exact reference in 64 dimensions where log-volumes spread over ~5 nats."""

    def __init__(self):
        super().__init__()
        self.register_buffer("slopes", torch.linspace(1.0, 3.0, 64, dtype=torch.float64))

    def forward(self, latents):
        return torch.cat([latents, self.slopes * torch.relu(latents)], dim=1)

    def positive_share(self):
        stretch = torch.sqrt(1 + self.slopes**2)
        return float((stretch / (1 + stretch)).mean())


def between_runs(values):
    """Mean and standard error of independent runs' estimates."""
    values = torch.tensor(values, dtype=torch.float64)
    return float(values.mean()), float(values.std() / math.sqrt(values.shape[0]))


@pytest.mark.parametrize("sampler", ["smc", "mcmc"])
def test_ramp_area_share_is_matched(sampler):
    ramp = Ramp(slope=3.0, kink=0.2)
    generator = box_generator(ramp)
    shares = [float((sample(generator, 1000, target="uniform", sampler=sampler, seed=seed).latents[:, 0] > 0.2)
                    .double().mean()) for seed in range(5)]
    mean, error = between_runs(shares)
    assert abs(mean - ramp.ramp_area_share()) < 3 * error
    naive = (1 - 0.2) / 2
    assert abs(mean - naive) > 10 * error


def test_sir_reports_ess_largest_weight_and_distinct_latents():
    ramp = Ramp(slope=3.0, kink=0.2)
    result = sample(box_generator(ramp), 2000, target="uniform", sampler="sir", seed=0, proposals=40_000)
    share = float((result.latents[:, 0] > 0.2).double().mean())
    error = math.sqrt(0.25 * (1 / 2000 + 1 / result.ess))
    assert abs(share - ramp.ramp_area_share()) < 3 * error
    assert result.evaluations == 40_000 and 0 < result.max_weight < 1e-3 and result.distinct <= 2000
    assert result.log_weights.shape == (2000,)


def test_tent_tile_masses_are_matched_by_mcmc_and_smc():
    tent = Tent(slope=2.0, step=3.0, kink=0.5)
    generator = box_generator(tent)
    exact = tent.tile_area_shares()[(True, True)] + tent.tile_area_shares()[(False, True)]
    for sampler in ("smc", "mcmc"):
        shares = [float((sample(generator, 1000, target="uniform", sampler=sampler, seed=seed).latents[:, 1] > 0.5)
                        .double().mean()) for seed in range(5)]
        mean, error = between_runs(shares)
        assert abs(mean - exact) < 3 * error, sampler


def test_uniform_target_on_a_ball():
    ramp = Ramp(slope=3.0, kink=0.0)  # the disk is symmetric in z1, so the ramp's area share is the box's
    generator = box_generator(ramp, prior=UniformBall(radius=1.0))
    results = [sample(generator, 1000, target="uniform", sampler="mcmc", seed=seed) for seed in range(5)]
    assert all(bool((r.latents.norm(dim=1) <= 1).all()) for r in results)
    mean, error = between_runs([float((r.latents[:, 0] > 0).double().mean()) for r in results])
    assert abs(mean - ramp.ramp_area_share()) < 3 * error


def test_smc_stays_healthy_in_64_dimensions_where_sir_collapses():
    hinge = Hinge()
    generator = Generator(hinge, latent_shape=(64,), dtype=torch.float64)
    runs = [sample(generator, 250, sampler="smc", seed=seed, particles=250) for seed in range(4)]
    budget = runs[0].evaluations
    sir = sample(generator, 250, sampler="sir", seed=0, proposals=budget)
    assert sir.ess < 0.01 * budget, "pool resampling collapses: log-volumes spread over ~5 nats in 64 dimensions"
    for run in runs:
        assert min(run.diagnostics["ess_history"]) >= 0.3 * 250
        assert run.diagnostics["schedule"][-1] == 1.0 and run.diagnostics["stopped"] == "done"
        assert run.distinct >= 0.9 * 250
    mean, error = between_runs([float((run.latents > 0).double().mean()) for run in runs])
    assert abs(mean - hinge.positive_share()) < 3 * error
    exact_log_normalizer = float(torch.log((1 + torch.sqrt(1 + hinge.slopes**2)) / 2).sum())
    estimates = [run.diagnostics["log_normalizer"] for run in runs]
    assert abs(sum(estimates) / 4 - exact_log_normalizer) < 0.5, "log Z = sum_j log E[c_j^[z_j > 0]]"


def test_budgets_stop_cleanly_and_say_what_was_reached():
    generator = Generator(Hinge(), latent_shape=(64,), dtype=torch.float64)
    stopped = sample(generator, 200, sampler="smc", seed=0, max_evaluations=2000)
    assert stopped.diagnostics["stopped"] == "max_evaluations" and stopped.evaluations <= 2000
    assert stopped.diagnostics["beta"] < 1.0 and stopped.latents.shape == (200, 64)
    late = sample(generator, 200, sampler="mcmc", seed=0, deadline=0.0)
    assert late.diagnostics["stopped"] == "deadline" and late.latents.shape[0] == 0
    with pytest.raises(InvalidArgumentError, match="over the budget"):
        sample(generator, 200, sampler="sir", proposals=5000, max_evaluations=1000)


@pytest.mark.parametrize("sampler", ["sir", "smc", "mcmc"])
def test_same_seed_same_latents(sampler):
    generator = box_generator(Tent())
    first = sample(generator, 100, target="uniform", sampler=sampler, seed=4, top_k=1)
    again = sample(generator, 100, target="uniform", sampler=sampler, seed=4, top_k=1)
    other = sample(generator, 100, target="uniform", sampler=sampler, seed=5, top_k=1)
    assert torch.equal(first.latents, again.latents) and not torch.equal(first.latents, other.latents)


def test_samplers_refuse_what_they_cannot_do():
    with pytest.raises(InvalidArgumentError, match="needs a bounded uniform prior"):
        sample(Generator(Hinge(), latent_shape=(64,), dtype=torch.float64), 10, target="uniform", sampler="smc")
    with pytest.raises(InvalidArgumentError, match="need a Generator with a prior"):
        sample(Ramp(), 10, sampler="mcmc")
    with pytest.raises(InvalidArgumentError, match="unknown sampler 'gibbs'"):
        sample(box_generator(Ramp()), 10, sampler="gibbs")
