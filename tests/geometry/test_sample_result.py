"""What ``sample`` tells a user besides the latents: the warnings, word for word, the cost per effective sample, and
the options refused before any work."""

import math

import pytest
import torch
from torch import nn

from gendebias.errors import InvalidArgumentError
from gendebias.generators import Generator
from gendebias.geometry import MCMCSettings, SampleResult, sample
from gendebias.geometry.mcmc import MCMCTrace
from gendebias.geometry.sampling import RHO_LIMIT, _distinct, _with_warnings
from gendebias.geometry.smc import SMCTrace


def result(count, *, ess=None, distinct=None, stopped="done", beta=1.0, stuck=(), evaluations=1000):
    latents = torch.arange(2.0 * count).reshape(count, 2)
    trace = SMCTrace(particles=count, schedule=[beta], stuck=list(stuck))
    return SampleResult(latents, None, float(count) if ess is None else ess, count if distinct is None else distinct,
                        evaluations, "smc", 0, "requested", beta, stopped, trace)


def test_a_finished_diverse_sample_has_no_warnings():
    assert _with_warnings(result(10, ess=5.0, distinct=9), 10).warnings == ()


def test_each_warning_says_what_went_wrong_in_words():
    assert _with_warnings(result(10, stopped="deadline", beta=0.25), 10).warnings == (
        "stopped by deadline at beta = 0.25: the latents follow the tempered target base * volume^(beta * rho), "
        "not the one asked for",)
    assert _with_warnings(result(10, stopped="cancelled"), 10).warnings == (
        "stopped by cancelled during the sweeps after the last tempering step: the latents follow the target asked "
        "for but have not forgotten that step's resampling, so they carry more of its O(1/N) bias and correlation "
        "than a finished run",)
    assert _with_warnings(result(10, stuck=(0.125, 0.5)), 10).warnings == (
        "the moves could not make the population diverse again at 2 tempering steps (first at beta = 0.125): the "
        "latents are correlated beyond what the ESS estimate sees; more particles or SMCSettings(max_moves=...) help",)
    assert _with_warnings(result(8), 10).warnings == ("only 8 of the 10 latents asked for",)
    assert _with_warnings(result(10, ess=4.9), 10).warnings == (
        "effective sample size 4.9 of 10 latents: the sample is collapsed or correlated (sampler='auto' or 'smc' "
        "avoid this)",)
    assert _with_warnings(result(10, distinct=8), 10).warnings == ("only 8 distinct latents of 10",)
    notes = ["a note from the balanced pilot"]
    assert _with_warnings(result(8, ess=1.0, distinct=1), 10, notes).warnings == (
        "a note from the balanced pilot", "only 8 of the 10 latents asked for",
        "effective sample size 1.0 of 8 latents: the sample is collapsed or correlated (sampler='auto' or 'smc' "
        "avoid this)", "only 1 distinct latents of 8")


def test_an_empty_sample_says_only_that_it_is_empty():
    empty = _with_warnings(result(0, ess=0.0, distinct=0, stopped="deadline", beta=0.0), 5)
    assert empty.warnings[1:] == ("only 0 of the 5 latents asked for",) and empty.warnings[0].startswith(
        "stopped by deadline at beta = 0:")
    assert empty.cost_per_effective_sample == math.inf and _distinct(empty.latents) == 0


def test_the_cost_per_effective_sample_and_the_largest_weight():
    assert result(10, ess=4.0, evaluations=1000).cost_per_effective_sample == 250.0
    assert result(10).max_weight is None
    mcmc = SampleResult(torch.zeros(3, 2), None, 3.0, 1, 30, "mcmc", 0, "requested", 1.0, "done",
                        MCMCTrace(0.3, 0.5, 3, 1))
    assert mcmc.max_weight is None and _distinct(mcmc.latents) == 1


def test_distinct_counts_whole_latents_not_coordinates():
    latents = torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]], [[1.0, 0.0]]])
    assert _distinct(latents) == 2


def test_rho_and_the_options_are_refused_before_any_work():
    calls = []

    def counted(latents):
        calls.append(latents.shape[0])
        return torch.zeros(latents.shape[0], dtype=torch.float64)

    generator = Generator(nn.Identity(), latent_shape=(2,), dtype=torch.float64)
    for rho in (True, "1", math.nan, math.inf, RHO_LIMIT * 1.5, -RHO_LIMIT * 1.5):
        with pytest.raises(InvalidArgumentError, match=r"^rho must be a finite number with \|rho\| <= 1e\+06, got ") \
                as refused:
            sample(generator, 4, rho=rho, log_volume_function=counted)
        assert refused.value.field == "rho"
    for options, field in [({"sampler": "gibbs"}, "sampler"), ({"target": "flat"}, "target"), ({"seed": -1}, "seed"),
                           ({"target": "uniform"}, "target"), ({"target": "balanced"}, "target")]:
        with pytest.raises(InvalidArgumentError) as refused:
            sample(generator, 4, log_volume_function=counted, **options)
        assert refused.value.field == field
    with pytest.raises(InvalidArgumentError, match="n must be an int >= 0"):
        sample(generator, -1, log_volume_function=counted)
    assert calls == []
    edge = sample(generator, 4, rho=RHO_LIMIT, sampler="sir", seed=0, log_volume_function=counted)
    assert edge.latents.shape == (4, 2) and calls == [40]


def test_a_deadline_counts_from_the_call_and_a_generous_one_does_not_stop_the_run():
    generator = Generator(nn.Identity(), latent_shape=(4,), dtype=torch.float64)
    done = sample(generator, 50, sampler="mcmc", seed=0, deadline=600.0, settings=MCMCSettings(burn_in=5),
                  log_volume_function=lambda z: (z > 0).double().sum(1))
    assert done.stopped == "done" and done.latents.shape == (50, 4) and not any("stopped" in w for w in done.warnings)
