"""SIR, SMC, MCMC and auto draw from the debiasing target: checked against exact answers, with ESS that match the
variance measured across seeded replicates."""

import math

import pytest
import torch
from torch import nn

from gendebias.errors import InvalidArgumentError
from gendebias.generators import Generator, Ramp, Tent, UniformBall, UniformBox
from gendebias.geometry import MCMCSettings, SIRSettings, SMCSettings, sample


def box_generator(module, latent_dim=2, prior=None):
    return Generator(module, latent_shape=(latent_dim,), prior=prior or UniformBox(), dtype=torch.float64)


class Hinge(nn.Module):
    """``R^d -> R^2d``: ``(z, relu(z))``, with an analytic log-volume ``sum_j gain_j [z_j > 0]`` supplied to the
    samplers, so the tilted target (rho = 1, Gaussian prior) has independent coordinates with
    ``P(z_j > 0) = c_j / (1 + c_j)``, ``c_j = exp(gain_j)``. ``gain = log(sqrt(1 + a^2))`` is the hinge
    ``(z, a relu(z))``; larger gains give the log-volume spreads of real GANs without paying for Jacobians."""

    def __init__(self, dimension, gain):
        super().__init__()
        self.gains = torch.full((dimension,), float(gain), dtype=torch.float64)

    def forward(self, latents):
        return torch.cat([latents, torch.relu(latents)], dim=1)

    def log_volumes(self, latents):
        return (latents > 0).double() @ self.gains

    def positive_share(self):
        stretch = torch.exp(self.gains)
        return float((stretch / (1 + stretch)).mean())


def replicates(generator, hinge, runs, **options):
    """Bias, its standard error, the measured ESS of the positive-coordinate share, the mean reported ESS and the
    mean evaluations of ``runs`` seeded samples."""
    results = [sample(generator, 200, seed=seed, log_volume_function=hinge.log_volumes, **options)
               for seed in range(runs)]
    shares = torch.tensor([float((r.latents > 0).double().mean()) for r in results], dtype=torch.float64)
    exact = hinge.positive_share()
    iid = exact * (1 - exact) / hinge.gains.shape[0]  # variance of one exact latent's share
    measured = iid / float(shares.var())
    reported = sum(r.ess for r in results) / runs
    evaluations = sum(r.evaluations for r in results) / runs
    return float(shares.mean()) - exact, float(shares.std()) / math.sqrt(runs), measured, reported, evaluations, results


def honest(reported, measured, n=200):
    """A reported ESS is within a factor of 2 of the measured one, which can exceed the ``n`` latents (SMC's
    population can beat independent draws: its resampling is systematic) while no report can: above ``n`` the
    report is compared with ``n``."""
    return reported / min(measured, n) > 0.5 and reported / measured < 2.0


def between_runs(values):
    values = torch.tensor(values, dtype=torch.float64)
    return float(values.mean()), float(values.std() / math.sqrt(values.shape[0]))


def test_default_sampler_is_unbiased_diverse_and_honest_on_the_64_dimensional_hinge():
    hinge = Hinge(64, 0.5 * math.log(10.0))  # a = 3: log-volume std 4.6 nats
    generator = Generator(hinge, latent_shape=(64,), dtype=torch.float64)
    bias, error, measured, reported, _, results = replicates(generator, hinge, 8)
    assert all(r.sampler == "smc" and "collapse" in r.choice for r in results)
    assert abs(bias) < 3 * error
    assert measured >= 0.5 * 200
    assert honest(reported, measured)
    assert all(r.distinct >= 0.9 * 200 and not r.warnings for r in results)


@pytest.fixture(scope="module")
def hinge_256_replicates():
    hinge = Hinge(256, 2.5)  # log-volume std 20 nats
    generator = Generator(hinge, latent_shape=(256,), dtype=torch.float64)
    return replicates(generator, hinge, 8)


@pytest.mark.slow
def test_default_sampler_holds_at_real_gan_spreads_in_256_dimensions(hinge_256_replicates):
    bias, error, measured, reported, _, results = hinge_256_replicates
    assert abs(bias) < 3 * error
    assert measured >= 0.5 * 200
    assert honest(reported, measured)
    assert all(r.trace.islands == 4 and r.trace.stopped == "done" for r in results)
    assert all(any("effective sample size" in w for w in r.warnings) for r in results if r.ess < 100)


def test_sir_reports_the_ess_of_its_draws_from_the_pool_weights():
    hinge = Hinge(8, 1.0)
    generator = Generator(hinge, latent_shape=(8,), dtype=torch.float64)
    result = sample(generator, 200, sampler="sir", seed=0, settings=SIRSettings(proposals=4000),
                    log_volume_function=hinge.log_volumes)
    pool = generator.sample_latents(4000, seed=0)
    weights = torch.softmax(hinge.log_volumes(pool), 0)
    pool_ess = float(1 / (weights**2).sum())
    assert result.trace.pool_ess == pytest.approx(pool_ess, rel=1e-9)
    assert result.ess == pytest.approx(1 / (1 / 200 + 1 / pool_ess), rel=1e-9)
    assert result.max_weight == pytest.approx(float(weights.max()), rel=1e-9)
    assert result.evaluations == 4000 and result.log_weights.shape == (200,)


def test_sir_ess_matches_the_variance_across_replicates():
    hinge = Hinge(8, 1.0)
    generator = Generator(hinge, latent_shape=(8,), dtype=torch.float64)
    bias, error, measured, reported, _, _ = replicates(generator, hinge, 24, sampler="sir",
                                                        settings=SIRSettings(proposals=1000))
    assert abs(bias) < 3 * error
    assert 0.5 < reported / measured < 2.0


def test_smc_ess_tracks_the_measured_one_and_its_log_normalizer_is_exact():
    hinge = Hinge(16, 1.0)
    generator = Generator(hinge, latent_shape=(16,), dtype=torch.float64)
    bias, error, measured, reported, _, results = replicates(generator, hinge, 12, sampler="smc")
    assert abs(bias) < 3 * error
    assert 0.5 < reported / measured < 2.0
    exact = float(torch.log((1 + torch.exp(hinge.gains)) / 2).sum())
    mean, spread = between_runs([r.trace.log_normalizer for r in results])
    assert abs(mean - exact) < max(3 * spread, 0.05)
    assert all(r.trace.schedule[-1] == 1.0 and r.stopped == "done" for r in results)


def test_auto_takes_sir_where_the_pool_stays_diverse():
    hinge = Hinge(4, 0.2)
    generator = Generator(hinge, latent_shape=(4,), dtype=torch.float64)
    result = sample(generator, 200, seed=0, log_volume_function=hinge.log_volumes)
    assert result.sampler == "sir" and result.choice.startswith("sir: pilot of 200")
    assert result.trace.pool_ess >= 2 * 200 and result.ess >= 0.5 * 200 and not result.warnings


@pytest.mark.parametrize("sampler", ["auto", "smc", "mcmc"])
def test_ramp_area_share_is_matched_and_differs_from_naive(sampler):
    ramp = Ramp(slope=3.0, kink=0.2)
    generator = box_generator(ramp)
    shares = [float((sample(generator, 1000, target="uniform", sampler=sampler, seed=seed).latents[:, 0] > 0.2)
                    .double().mean()) for seed in range(6)]
    mean, error = between_runs(shares)
    assert abs(mean - ramp.ramp_area_share()) < 3 * error
    assert abs(mean - (1 - 0.2) / 2) > 10 * error
    wrong = (3 * math.sqrt(10) ** 0.8 * 0.8) / (3 * math.sqrt(10) ** 0.8 * 0.8 + 1.2)  # the share under vol^0.8
    assert abs(mean - wrong) > 3 * error or abs(wrong - ramp.ramp_area_share()) < 1e-3


def test_tent_tile_masses_are_matched_by_the_default_sampler():
    tent = Tent(slope=2.0, step=3.0, kink=0.5)
    generator = box_generator(tent)
    exact = tent.tile_area_shares()[(True, True)] + tent.tile_area_shares()[(False, True)]
    shares = [float((sample(generator, 1000, target="uniform", seed=seed).latents[:, 1] > 0.5).double().mean())
              for seed in range(6)]
    mean, error = between_runs(shares)
    assert abs(mean - exact) < 3 * error
    assert abs(mean - 0.25) > 10 * error  # naive: the box's share above the kink


def test_mcmc_on_a_ball_stays_inside_and_matches_the_area_share():
    ramp = Ramp(slope=3.0, kink=0.0)  # the disk is symmetric in z1, so the ramp's area share is the box's
    generator = box_generator(ramp, prior=UniformBall(radius=1.0))
    results = [sample(generator, 1000, target="uniform", sampler="mcmc", seed=seed) for seed in range(6)]
    assert all(bool((r.latents.norm(dim=1) <= 1).all()) for r in results)
    mean, error = between_runs([float((r.latents[:, 0] > 0).double().mean()) for r in results])
    assert abs(mean - ramp.ramp_area_share()) < 3 * error and abs(mean - 0.5) > 10 * error


def test_budgets_stop_cleanly_say_what_was_reached_and_warn():
    hinge = Hinge(64, 1.15)
    generator = Generator(hinge, latent_shape=(64,), dtype=torch.float64)
    stopped = sample(generator, 200, sampler="smc", seed=0, max_evaluations=2000,
                     log_volume_function=hinge.log_volumes)
    assert stopped.stopped == "max_evaluations" and stopped.evaluations <= 2000
    assert stopped.beta < 1.0 and stopped.latents.shape == (200, 64)
    assert any("beta" in warning for warning in stopped.warnings)
    late = sample(generator, 200, sampler="mcmc", seed=0, deadline=0.0, log_volume_function=hinge.log_volumes)
    assert late.stopped == "deadline" and late.latents.shape[0] == 0 and late.warnings
    asked = sample(generator, 200, sampler="smc", seed=0, should_stop=lambda: "cancelled",
                   log_volume_function=hinge.log_volumes)
    assert asked.stopped == "cancelled" and asked.evaluations == 200
    with pytest.raises(InvalidArgumentError, match="over the budget"):
        sample(generator, 200, sampler="sir", settings=SIRSettings(proposals=5000), max_evaluations=1000,
               log_volume_function=hinge.log_volumes)


def test_a_budget_that_ends_the_final_sweeps_says_the_target_was_reached_but_not_mixed():
    hinge = Hinge(16, 1.0)
    generator = Generator(hinge, latent_shape=(16,), dtype=torch.float64)
    exact = SMCSettings(acceptance="exact")  # one evaluation per proposal, so the budget below counts sweeps
    full = sample(generator, 200, sampler="smc", seed=0, settings=exact, log_volume_function=hinge.log_volumes)
    moves = full.trace.moves
    assert moves[-1] > moves[-2] + 2  # the final sweeps run on until the particles forget the last resampling
    budget = 200 * (1 + sum(moves[:-1]) + moves[-2] + 1)
    cut = sample(generator, 200, sampler="smc", seed=0, settings=exact, log_volume_function=hinge.log_volumes,
                 max_evaluations=budget)
    assert cut.stopped == "max_evaluations" and cut.beta == 1.0 and cut.trace.moves[-1] < moves[-1]
    assert any("after the last tempering step" in w for w in cut.warnings)
    assert not any("at beta" in w for w in cut.warnings)


def test_progress_reports_each_tempering_step():
    hinge = Hinge(16, 1.0)
    generator = Generator(hinge, latent_shape=(16,), dtype=torch.float64)
    seen = []
    result = sample(generator, 100, sampler="smc", seed=0, log_volume_function=hinge.log_volumes,
                    progress=seen.append)
    assert [p.beta for p in seen] == result.trace.schedule
    assert seen[-1].evaluations == result.evaluations


@pytest.mark.parametrize("sampler", ["auto", "sir", "smc", "mcmc"])
def test_same_seed_same_latents(sampler):
    generator = box_generator(Tent())
    first = sample(generator, 100, target="uniform", sampler=sampler, seed=4, top_k=1)
    again = sample(generator, 100, target="uniform", sampler=sampler, seed=4, top_k=1)
    other = sample(generator, 100, target="uniform", sampler=sampler, seed=5, top_k=1)
    assert torch.equal(first.latents, again.latents) and not torch.equal(first.latents, other.latents)


def test_seeds_take_every_64_bit_value():
    generator = box_generator(Tent())
    assert sample(generator, 10, target="uniform", sampler="sir", seed=2**63 + 5).seed == 2**63 + 5
    with pytest.raises(InvalidArgumentError, match=r"seed must be an int in \[0, 2\*\*64\)") as refused:
        sample(generator, 10, target="uniform", sampler="sir", seed=2**64)
    assert refused.value.field == "seed"


def test_samplers_refuse_what_they_cannot_do():
    hinge = Generator(Hinge(4, 1.0), latent_shape=(4,), dtype=torch.float64)
    with pytest.raises(InvalidArgumentError, match="needs a bounded uniform prior"):
        sample(hinge, 10, target="uniform", sampler="smc")
    with pytest.raises(InvalidArgumentError, match="need a Generator with a prior"):
        sample(Ramp(), 10, sampler="mcmc")
    with pytest.raises(InvalidArgumentError, match="unknown sampler 'gibbs'"):
        sample(box_generator(Ramp()), 10, sampler="gibbs")
    with pytest.raises(InvalidArgumentError, match="rho must be a finite number"):
        sample(box_generator(Ramp()), 10, target="uniform", rho=1e308)
    assert MCMCSettings().chains is None and SMCSettings().particles is None
