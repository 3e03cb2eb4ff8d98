"""Every path ``auto`` and the ``balanced`` target can take, on analytic log-volumes: what was chosen, the measured
figures the choice quotes, the evaluations (the pilot is reused, never paid twice), the budget's edge, progress and
seeds."""

import math
import re

import pytest
import torch
from torch import nn

import gendebias.geometry.sampling as sampling
from gendebias.errors import InvalidArgumentError
from gendebias.generators import Generator
from gendebias.geometry import SIRSettings, SMCSettings, sample
from gendebias.geometry.kernels import TemperedTarget
from gendebias.geometry.progress import Progress
from gendebias.geometry.weights import effective_sample_size

EXACT = SMCSettings(acceptance="exact")  # one exact evaluation per proposal, so the evaluations add up


def generator(dimension):
    return Generator(nn.Identity(), latent_shape=(dimension,), dtype=torch.float64)


def hinge(gain):
    return lambda latents: gain * (latents > 0).double().sum(1)


def pilot(source, size, seed):
    """The pilot ``auto`` draws: the first seed its seeded generator gives."""
    pilot_seed = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(seed)))
    return source.sample_latents(size, seed=pilot_seed)


def measured(log_volumes, size):
    share = effective_sample_size(log_volumes) / size
    return share, f"pilot of {size} base latents: weight ESS {share:.1%} of the pilot, rho*log_volume std " \
                  f"{float(log_volumes.std()):.2g} nats"


def test_auto_runs_smc_from_its_pilot_where_importance_weights_would_collapse():
    source, log_volume, seen = generator(16), hinge(1.5), []
    result = sample(source, 100, seed=3, log_volume_function=log_volume, progress=seen.append, settings=EXACT)
    share, figures = measured(log_volume(pilot(source, 100, 3)), 100)
    assert 4 * 100 / share > 20 * 100  # the rule's reason holds
    assert result.sampler == "smc" and result.seed == 3
    assert result.choice == f"smc: {figures}; importance weights from the base would collapse"
    assert result.evaluations == 100 * (1 + sum(result.trace.moves))  # the pilot is the first population
    assert [(p.sampler, p.beta) for p in seen] == [("smc", beta) for beta in result.trace.schedule]


def test_auto_abandons_a_pool_worse_than_its_pilot_predicted_for_smc():
    # 2.3% of the prior has log-volume 6: a pilot without any predicts a perfect pool, the pool finds some
    source, seen = generator(2), []
    log_volume = lambda latents: 6.0 * (latents[:, 0] > 2.0).double()  # noqa: E731
    seed = next(s for s in range(100) if not bool((pilot(source, 100, s)[:, 0] > 2.0).any()))
    result = sample(source, 100, seed=seed, log_volume_function=log_volume, progress=seen.append, settings=EXACT)
    _, figures = measured(torch.zeros(100, dtype=torch.float64), 100)
    match = re.fullmatch(rf"smc: {re.escape(figures)}; the pool of 400 had ESS (\d+\.\d) only", result.choice)
    assert match and float(match.group(1)) < 2 * 100
    assert result.sampler == "smc" and result.seed == seed and result.beta == 1.0
    assert result.evaluations == 400 + 100 * (1 + sum(result.trace.moves))  # a fresh population after the pool
    assert seen[0].sampler == "sir" and [p.beta for p in seen[1:]] == result.trace.schedule
    share = float((result.latents[:, 0] > 2.0).double().mean())  # exact: 0.0228 e^6 / (0.0228 e^6 + 0.9772)
    exact = 0.02275 * math.exp(6) / (0.02275 * math.exp(6) + 0.97725)
    assert abs(share - exact) < 0.15


def test_auto_sir_reuses_its_pilot_reports_once_and_fits_a_budget_of_exactly_its_pool():
    source, log_volume, seen = generator(4), hinge(0.3), []
    result = sample(source, 100, seed=5, log_volume_function=log_volume, progress=seen.append)
    share, figures = measured(log_volume(pilot(source, 100, 5)), 100)
    pool = max(math.ceil(4 * 100 / share), 100)
    assert result.choice == f"sir: {figures}; a pool of {pool} is predicted to give ESS 4 n"
    assert result.sampler == "sir" and result.beta == 1.0 and result.seed == 5
    assert result.evaluations == result.trace.proposals == pool  # the pilot is part of the pool
    assert seen == [Progress("sir", 1.0, pool, 1, result.trace.pool_ess)]
    exact = sample(source, 100, seed=5, log_volume_function=log_volume, max_evaluations=pool)
    assert exact.sampler == "sir" and torch.equal(exact.latents, result.latents)
    short = sample(source, 100, seed=5, log_volume_function=log_volume, max_evaluations=pool - 1)
    assert short.sampler == "smc" and short.evaluations <= pool - 1
    assert short.choice == f"smc: {figures}; the pool SIR needs is over the evaluation budget"


def test_auto_pilots_at_least_two_latents():
    result = sample(generator(2), 1, seed=0, log_volume_function=hinge(0.1))
    assert result.choice.startswith("sir: pilot of 2 base latents:") and result.latents.shape == (1, 2)


def test_sir_refuses_a_pool_over_the_budget_naming_the_budget():
    with pytest.raises(InvalidArgumentError, match="SIR needs 500 log-volume evaluations") as refused:
        sample(generator(2), 10, sampler="sir", settings=SIRSettings(proposals=500), max_evaluations=499,
               log_volume_function=hinge(0.1))
    assert refused.value.field == "max_evaluations"


def test_mcmc_runs_up_to_32_chains_and_says_it_was_requested():
    many = sample(generator(2), 40, sampler="mcmc", seed=1, log_volume_function=hinge(0.1))
    assert many.trace.chains == 32 and many.choice == "requested" and many.seed == 1 and many.beta == 1.0
    one = sample(generator(2), 1, sampler="mcmc", seed=1, log_volume_function=hinge(0.1))
    assert one.trace.chains == 1 and one.latents.shape == (1, 2)


def three_classes(latents):
    """Class 0 to the right, 1 to the left (soft), and a class 2 no latent belongs to."""
    right = torch.sigmoid(3 * latents[:, 0].double())
    return torch.stack([right, 1 - right, torch.zeros_like(right)], 1)


@pytest.fixture
def recorded(monkeypatch):
    """The balanced weights' calls (their ``rho`` and class masses) and the masses each sampler is fixed to."""
    calls = {"weights": [], "fixed": []}
    weights, fix = sampling.balanced_log_weights, TemperedTarget.with_class_masses

    def weigh(log_volumes, probabilities, *, rho):
        result = weights(log_volumes, probabilities, rho=rho)
        calls["weights"].append((rho, result.class_masses))
        return result

    def fixed(self, masses):
        calls["fixed"].append(masses)
        return fix(self, masses)

    monkeypatch.setattr(sampling, "balanced_log_weights", weigh)
    monkeypatch.setattr(TemperedTarget, "with_class_masses", fixed)
    return calls


MASSES = r"\[\d\.\d{3}, \d\.\d{3}, 0\.000\]"


@pytest.mark.parametrize(("sampler", "prefix", "why"), [
    ("smc", "requested", ""),
    ("mcmc", "requested", ""),
    ("auto", "smc", "; importance weights from the base would collapse"),
])
def test_balanced_fixes_the_pilot_masses_mixed_with_uniform_then_reweights(recorded, sampler, prefix, why):
    seen = []
    options = {"target": "balanced", "rho": 0.5, "log_volume_function": hinge(4.0),
               "class_probabilities": three_classes, "sampler": sampler, "settings": EXACT}
    result = sample(generator(8), 50, seed=7, progress=seen.append, **options)
    (pilot_rho, pilot_masses), (correction_rho, _) = recorded["weights"]
    assert pilot_rho == 0.5 and correction_rho == 1.0
    assert torch.equal(recorded["fixed"][0], 0.5 * pilot_masses + 0.5 / 3)
    assert re.fullmatch(rf"{prefix}; class masses fixed from the pilot of 512 base latents: balanced weight ESS "
                        rf"\d+\.\d%, class masses {MASSES}{re.escape(why)}; reweighted to the class masses "
                        rf"{MASSES} estimated on the 50 drawn latents \(correction weight ESS \d+\.\d%\)",
                        result.choice), result.choice
    assert result.warnings[0] == "classes [2] have no mass in the pilot: they cannot be balanced"
    assert seen and seen[-1].sampler == result.sampler == ("mcmc" if sampler == "mcmc" else "smc")
    if sampler != "mcmc":
        assert result.evaluations == 512 + 50 * sum(result.trace.moves)  # SMC starts from the pilot
    again = sample(generator(8), 50, seed=7, **options)
    other = sample(generator(8), 50, seed=8, **options)
    assert torch.equal(again.latents, result.latents) and not torch.equal(other.latents, result.latents)


def test_balanced_reweights_even_a_single_latent():
    result = sample(generator(8), 1, seed=0, sampler="smc", target="balanced", log_volume_function=hinge(1.0),
                    class_probabilities=three_classes)
    assert "; reweighted to the class masses" in result.choice and result.latents.shape == (1, 8)
