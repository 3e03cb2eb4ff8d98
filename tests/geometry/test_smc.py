"""SMC's own rules, checked step by step on analytic log-volumes: how far each tempering step goes, how the islands
are formed and combined, when the sweeps stop, what a budget or a rank-deficient latent does, and what the trace
and the progress reports say."""

import math

import pytest
import torch
from torch import nn

from gendebias.errors import DegenerateWeightsError, InvalidArgumentError
from gendebias.generators import Generator
from gendebias.geometry.ess import genealogy_ess, island_ess, statistics
from gendebias.geometry.kernels import Particles, TemperedTarget
from gendebias.geometry.resample import resample
from gendebias.geometry.smc import (
    ISLAND_SIZE,
    ISLAND_SPREAD,
    SMCSettings,
    _next_temperature,
    island_labels,
    population_ess,
    smc,
    tilt_spread,
)
from gendebias.geometry.weights import effective_sample_size


def hinge(dimension, gain):
    """The hinge's analytic log-volume ``gain * #{j: z_j > 0}`` (see tests/geometry/test_samplers.py)."""
    gains = torch.full((dimension,), float(gain), dtype=torch.float64)
    return lambda latents: (latents > 0).double() @ gains


def target(dimension, log_volume_function, rho=1.0, **budget):
    generator = Generator(nn.Identity(), latent_shape=(dimension,), dtype=torch.float64)
    return TemperedTarget(generator, rho, "tilted", log_volume_function=log_volume_function, **budget)


DEFAULT = SMCSettings()


def run(goal, settings=DEFAULT, particles=200, seed=0, **options):
    return smc(goal, settings, particles, random=torch.Generator().manual_seed(seed), **options)


def given(goal, latents, log_volumes):
    """Base particles with chosen log-volumes (not counted as evaluations)."""
    return Particles(latents, log_volumes.to(torch.float64), goal.log_base(latents))


def members(particles, islands):
    return [torch.arange(island, particles, islands) for island in range(islands)]


def test_each_step_goes_exactly_as_far_as_the_ess_threshold_allows():
    goal = target(16, hinge(16, 1.0))
    _, _, trace = run(goal)
    assert trace.schedule[-1] == 1.0 and len(trace.schedule) >= 3
    assert all(a < b for a, b in zip(trace.schedule, trace.schedule[1:], strict=False))
    for ess in trace.step_ess[:-1]:  # bisection to the threshold: half of the 200 particles
        assert ess == pytest.approx(100.0, rel=1e-9)
    assert trace.step_ess[-1] >= 100.0


def test_the_next_temperature_jumps_to_one_when_the_rest_of_the_way_is_affordable():
    log_volumes = torch.randn(400, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    goal = target(2, hinge(2, 1.0))
    rows = members(400, 1)
    # std 1: the remaining 0.5 keeps an ESS of about exp(-0.25) N, a step of 1.5 would not (exp(-2.25) N)
    beta, increments = _next_temperature(goal, log_volumes, 0.5, 0.5, rows)
    assert beta == 1.0 and torch.equal(increments, 0.5 * log_volumes)
    assert effective_sample_size(1.5 * log_volumes) < 200
    # std 3 from beta 0: bisection to the threshold, beta' < 1
    spread = 3 * log_volumes
    beta, increments = _next_temperature(goal, spread, 0.0, 0.5, rows)
    assert 0.0 < beta < 1.0 and torch.equal(increments, beta * spread)
    assert effective_sample_size(increments) == pytest.approx(200.0, rel=1e-9)


def test_the_threshold_counts_the_islands_ess_each_normalised_on_its_own():
    log_volumes = torch.randn(400, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    log_volumes[::2] += 5.0  # two islands at different levels: pooled weights would favour the first
    rows = members(400, 2)
    beta, increments = _next_temperature(target(2, hinge(2, 1.0)), 3 * log_volumes, 0.0, 0.5, rows)
    assert 0.0 < beta < 1.0
    assert sum(effective_sample_size(increments[r]) for r in rows) == pytest.approx(200.0, rel=1e-9)
    assert effective_sample_size(increments) < 150


def test_settings_out_of_range_are_refused_before_any_work():
    for name, value in [("ess_threshold", 1.0), ("ess_threshold", 0.0), ("diversity", 1.5), ("step_diversity", -0.1),
                        ("min_moves", -1), ("max_moves", 0), ("islands", 0), ("particles", 0),
                        ("final_correlation", 2.0)]:
        with pytest.raises(InvalidArgumentError, match=f"SMCSettings.{name} = ") as refused:
            SMCSettings(**{name: value})
        assert refused.value.field == name
    with pytest.raises(InvalidArgumentError, match="max_moves"):
        SMCSettings(min_moves=5, max_moves=4)


def test_a_flat_target_is_reached_in_one_step_even_with_a_threshold_near_one():
    goal = target(4, lambda latents: torch.zeros(latents.shape[0], dtype=torch.float64))
    _, _, trace = run(goal, SMCSettings(ess_threshold=0.999), particles=128)
    assert trace.schedule == [1.0] and trace.step_ess == [pytest.approx(128.0, rel=1e-12)]


def test_islands_form_from_ten_nats_of_spread_and_at_least_32_particles_each():
    assert ISLAND_SPREAD == 10.0 and ISLAND_SIZE == 32
    goal = target(2, lambda latents: 10.0 * torch.sign(latents[:, 0]).double(), max_evaluations=0)
    # 64 at -10, one at 0, 64 at +10: a spread of exactly 10 nats (sample standard deviation)
    latents = torch.zeros(129, 2, dtype=torch.float64)
    latents[:64, 0], latents[65:, 0] = -1.0, 1.0
    initial = given(goal, latents, goal.log_volume_function(latents))
    assert tilt_spread(goal, initial.log_volumes) == 10.0
    _, _, trace = run(goal, initial=initial)
    assert trace.islands == 4 and trace.particles == 129 and trace.stopped == "max_evaluations"
    _, _, trace = run(target(16, hinge(16, 1.0)))  # spread about 2 nats: one population
    assert trace.islands == 1 and trace.particles == 200
    _, _, trace = run(target(16, hinge(16, 1.0), max_evaluations=100), SMCSettings(islands=4), particles=100)
    assert trace.islands == 3  # 100 particles hold three islands of 32 or more


def test_tilt_spread_is_the_standard_deviation_of_the_finite_tilted_log_volumes():
    goal = target(2, hinge(2, 1.0), rho=-2.0)
    values = torch.tensor([1.0, 2.0, 4.0, -math.inf], dtype=torch.float64)
    assert tilt_spread(goal, values) == pytest.approx(2 * float(values[:3].std()), rel=1e-12)
    assert tilt_spread(goal, values[:2]) == pytest.approx(2 * float(values[:2].std()), rel=1e-12)
    assert tilt_spread(goal, values[:1]) == 0.0 and tilt_spread(goal, values[3:]) == 0.0


def test_island_labels_deal_the_particles_round_robin():
    assert island_labels(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert island_labels(4, 1).tolist() == [0, 0, 0, 0]


def test_every_resampling_draws_its_own_seed_from_the_whole_62_bit_range(monkeypatch):
    import gendebias.geometry.smc as module

    seeds = []

    def recording(log_weights, count, *, scheme, seed):
        seeds.append(seed)
        return resample(log_weights, count, scheme=scheme, seed=seed)

    monkeypatch.setattr(module, "resample", recording)
    _, _, trace = run(target(16, hinge(16, 1.0)), SMCSettings(islands=4))
    assert len(seeds) == 4 * len(trace.schedule) and len(set(seeds)) == len(seeds)
    assert all(0 <= seed < 2**62 for seed in seeds) and max(seeds) > 2**56


def test_islands_are_resampled_on_their_own_systematically_and_their_normalisers_averaged():
    goal = target(2, hinge(2, 1.0))
    latents = torch.randn(256, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    log_volumes = torch.randn(256, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    initial = given(goal, latents, log_volumes)
    no_sweeps = SMCSettings(islands=4, ess_threshold=0.1, min_moves=0, diversity=0.0, final_correlation=1.0)
    population, ancestors, trace = run(goal, no_sweeps, initial=initial)  # one step: the ESS at beta = 1 is enough
    assert trace.schedule == [1.0] and trace.islands == 4 and trace.moves == [0]
    values = statistics(population.latents, population.log_volumes)
    spread = island_ess(values, island_labels(256, 4))
    assert spread < genealogy_ess(values, ancestors) - 5 and trace.diversity == [spread]  # even with no sweeps
    parents, estimates = ancestors[0], []
    for rows in members(256, 4):
        weights = torch.softmax(log_volumes[rows], 0)
        chosen = parents[rows]
        assert bool(torch.isin(chosen, rows).all())  # no particle descends from another island's
        counts = torch.bincount(chosen, minlength=256)[rows].double()
        expected = rows.numel() * weights
        assert bool((counts >= expected.floor()).all() and (counts <= expected.ceil()).all())  # systematic
        estimates.append(float(torch.logsumexp(log_volumes[rows], 0)) - math.log(rows.numel()))
    exact = float(torch.logsumexp(torch.tensor(estimates, dtype=torch.float64), 0)) - math.log(4)
    assert trace.log_normalizer == pytest.approx(exact, rel=1e-13, abs=1e-13)


def test_the_final_population_is_diverse_and_has_forgotten_the_last_resampling():
    goal = target(16, hinge(16, 1.0))
    population, ancestors, trace = run(goal)
    assert trace.correlation[-1] <= 0.1 and trace.diversity[-1] >= 0.9 * 200
    assert trace.moves[-1] > trace.moves[-2]
    assert all(0.0 < rate <= 1.0 for rate in trace.acceptance)
    assert all(0.0 < step <= 0.99 for step in trace.step_sizes)
    assert len(trace.acceptance) == len(trace.step_sizes) == len(trace.moves) == len(trace.schedule)
    assert trace.diversity[-1] == population_ess(population, ancestors)


def test_the_final_diversity_counts_the_islands_spread():
    goal = target(32, hinge(32, 3.0))
    population, ancestors, trace = run(goal, SMCSettings(islands=4, max_moves=4, acceptance="exact"))
    values = statistics(population.latents, population.log_volumes)
    islands = island_ess(values, island_labels(200, 4))
    assert islands < genealogy_ess(values, ancestors) - 10  # the islands drifted apart: only their spread shows it
    assert trace.diversity[-1] == pytest.approx(islands, rel=1e-12)


@pytest.mark.parametrize("least", [0, 2])
def test_settings_that_ask_for_no_diversity_get_exactly_the_least_sweeps(least):
    goal = target(16, hinge(16, 1.0))
    settings = SMCSettings(min_moves=least, step_diversity=0.0, diversity=0.0, final_correlation=1.0,
                           acceptance="exact")
    _, _, trace = run(goal, settings)
    steps = len(trace.schedule)
    assert trace.moves == [least] * steps and goal.evaluations == 200 * (1 + least * steps)
    if least == 0:
        assert trace.correlation == [1.0] * steps and all(math.isnan(rate) for rate in trace.acceptance)
        assert max(trace.diversity) < 0.9 * 200  # the genealogy sees the unmoved copies


def test_steps_stop_sweeping_once_the_population_is_fully_diverse():
    _, _, trace = run(target(8, hinge(8, 1.0)), SMCSettings(step_diversity=1.0, diversity=1.0, max_moves=30,
                                                            final_correlation=1.0))
    assert trace.diversity == [200.0] * len(trace.schedule) and max(trace.moves) < 30


def test_sweeps_stop_at_max_moves_and_steps_left_under_half_diverse_are_marked_stuck():
    _, _, trace = run(target(32, hinge(32, 3.0)), SMCSettings(max_moves=4))
    assert trace.moves == [4] * len(trace.schedule)
    stuck = [beta for beta, diversity in zip(trace.schedule, trace.diversity, strict=True) if diversity < 100]
    assert trace.stuck == stuck and 0 < len(stuck) < len(trace.schedule)  # both kinds of step occur


@pytest.mark.parametrize(("budget", "moves"), [
    (400, [1]),  # the first step needs room for one sweep: it resamples and sweeps once
    (700, [2]),  # a sweep of 200 evaluations does not fit the last 100: never overspent
    (200 * (1 + 5) + 200 * 4, [5]),  # the next step needs as many sweeps as the last (5): it is not started
])
def test_a_budget_stops_before_a_step_or_sweep_it_cannot_afford(budget, moves):
    exact = SMCSettings(acceptance="exact")  # one evaluation per proposal
    assert run(target(16, hinge(16, 1.0)), exact)[2].moves[0] == 5  # the unbudgeted run's first step
    goal = target(16, hinge(16, 1.0), max_evaluations=budget)
    _, _, trace = run(goal, exact)
    assert trace.stopped == "max_evaluations" and trace.moves == moves and len(trace.schedule) == 1
    assert goal.evaluations == 200 * (1 + sum(moves)) <= budget


@pytest.mark.parametrize(("gain", "delayed", "most"), [(1.0, True, 200), (4.0, False, 300)])
def test_auto_acceptance_screens_below_ten_nats_of_spread_and_sweeps_at_most_its_own_cap(gain, delayed, most):
    # 32 coordinates, half positive under the prior: rho * log_volume spreads gain * sqrt(32 / 4): 2.8 or 11.3 nats
    goal = target(32, hinge(32, gain))
    _, _, trace = run(goal, SMCSettings(final_correlation=-1.0, islands=1))  # the last step sweeps to the cap
    assert trace.delayed is delayed and trace.moves[-1] == most and max(trace.moves) == most
    assert (goal.evaluations < 200 * (1 + sum(trace.moves))) is delayed


def test_delayed_acceptance_never_overspends_a_budget_and_evaluates_under_one_per_proposal():
    # a sweep is only started with room for every proposal's evaluation; the screen then evaluates fewer
    goal = target(16, hinge(16, 1.0), max_evaluations=200 * 6 + 100)
    _, _, trace = run(goal, SMCSettings(acceptance="delayed"))
    assert trace.stopped == "max_evaluations" and goal.evaluations <= 200 * 6 + 100
    assert 200 < goal.evaluations < 200 * (1 + 0.8 * sum(trace.moves))


def test_rank_deficient_latents_never_survive_a_positive_rho_and_a_negative_one_is_refused():
    def half_rank_deficient(latents):
        return torch.where(latents[:, 0] > 0, 1.0, -math.inf).double()

    population, _, trace = run(target(4, half_rank_deficient, rho=0.5))
    assert trace.schedule[-1] == 1.0 and bool((population.latents[:, 0] > 0).all())
    run(target(4, half_rank_deficient, rho=0.0))  # the prior: nothing to refuse
    message = r"^rho < 0 gives infinite weight to rank-deficient latents \(log_volume -inf\)$"
    with pytest.raises(DegenerateWeightsError, match=message):
        run(target(4, half_rank_deficient, rho=-0.5))


def test_progress_reports_each_step_as_the_trace_records_it():
    goal, seen = target(16, hinge(16, 1.0)), []
    _, _, trace = run(goal, progress=seen.append)
    assert [p.sampler for p in seen] == ["smc"] * len(trace.schedule)
    assert [p.step for p in seen] == list(range(1, len(trace.schedule) + 1))
    assert [p.beta for p in seen] == trace.schedule and [p.ess for p in seen] == trace.step_ess
    assert seen[-1].evaluations == goal.evaluations


def test_population_ess_is_the_smaller_of_the_genealogy_and_the_islands_spread():
    latents = torch.randn(160, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    latents[::2] += 0.5  # islands 0 and 2 of four (or island 0 of two) sit apart
    log_volumes = latents[:, 0].clone()
    population = Particles(latents, log_volumes, torch.zeros(160, dtype=torch.float64))
    values = statistics(latents, log_volumes)
    families = [torch.arange(160) // 2]  # pairs of copies
    genealogy = genealogy_ess(values, families)
    assert population_ess(population, families) == genealogy  # one island by default
    for islands in (2, 4):
        spread = island_ess(values, island_labels(160, islands))
        assert spread < genealogy - 10
        assert population_ess(population, families, islands=islands) == pytest.approx(spread, rel=1e-12)
    keep = torch.arange(0, 160, 3)
    kept = statistics(latents[keep], log_volumes[keep])
    expected = min(genealogy_ess(kept, [families[0][keep]]), island_ess(kept, island_labels(160, 4)[keep]))
    assert population_ess(population, families, keep, islands=4) == pytest.approx(expected, rel=1e-12)
