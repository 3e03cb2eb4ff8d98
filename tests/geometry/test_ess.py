"""Effective sample sizes of the samplers' output against exact answers: duplicated families, AR(1) chains with a
known autocorrelation time, chains that disagree."""

import math

import pytest
import torch

from gendebias.geometry.ess import finite_log_volumes, genealogy_ess, multichain_ess, resampled_ess, statistics


def test_statistics_take_64_evenly_spaced_coordinates_and_the_finite_log_volume():
    latents = torch.arange(300, dtype=torch.float32).reshape(3, 100)
    values = statistics(latents, torch.tensor([-math.inf, 2.0, 1.0]))
    assert values.shape == (3, 65) and values.dtype == torch.float64
    columns = torch.linspace(0, 99, 64).round().long()
    torch.testing.assert_close(values[:, :64], latents[:, columns].double(), rtol=0, atol=0)
    assert values[:, 64].tolist() == [1.0, 2.0, 1.0]
    small = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(statistics(small), small.flatten(1).double(), rtol=0, atol=0)


def test_finite_log_volumes_fill_minus_inf_with_the_smallest_finite_value_or_0():
    assert finite_log_volumes(torch.tensor([-math.inf, 3.0, -1.0])).tolist() == [-1.0, 3.0, -1.0]
    assert finite_log_volumes(torch.full((2,), -math.inf)).tolist() == [0.0, 0.0]


def test_resampled_ess_adds_the_pool_error_to_the_draws_noise():
    assert resampled_ess(100.0, 100) == pytest.approx(50.0, rel=1e-15)
    assert resampled_ess(300.0, 100) == pytest.approx(75.0, rel=1e-15)
    assert resampled_ess(0.0, 100) == 0.0 and resampled_ess(10.0, 0) == 0.0
    assert resampled_ess(100.0, 1) == pytest.approx(1 / 1.01, rel=1e-15)
    assert resampled_ess(1.0, 1) == pytest.approx(0.5, rel=1e-15)


def _families(values: list[float], copies: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each value ``copies`` times, as one family per value."""
    column = torch.tensor(values, dtype=torch.float64).repeat_interleave(copies)
    return column[:, None], torch.arange(len(values)).repeat_interleave(copies)


def test_genealogy_ess_of_identical_pairs_is_the_design_effect_formula():
    values, pairs = _families([0.0, 1.0, 3.0, 4.0, 7.0, 9.0, 10.0, 14.0], 2)
    # every family sum is twice a deviation: design effect 2 (N - 1) / N = 1.875 exactly
    assert genealogy_ess(values, [pairs]) == pytest.approx(16 / 1.875, rel=1e-12)
    assert genealogy_ess(values, [torch.arange(16)]) == 16.0, "singleton families: no loss (capped at N)"
    assert genealogy_ess(values, []) == 16.0 and genealogy_ess(values[:1], [pairs[:1]]) == 1.0
    # the worst lag counts; a lag with fewer than sqrt(N) = 4 families stops the search
    assert genealogy_ess(values, [torch.arange(16), pairs]) == pytest.approx(16 / 1.875, rel=1e-12)
    quads = torch.arange(16) // 4  # 4 families: still used
    eight = genealogy_ess(values, [quads])
    assert eight < 16 / 1.875
    assert genealogy_ess(values, [torch.arange(16) // 8, pairs]) == 16.0, "2 families: stop before the pairs"


def test_genealogy_ess_ignores_constant_statistics():
    values, pairs = _families([0.0, 1.0, 3.0, 4.0, 7.0, 9.0, 10.0, 14.0], 2)
    with_constant = torch.cat([values, torch.full_like(values, 5.0)], dim=1)
    assert genealogy_ess(with_constant, [pairs]) == pytest.approx(16 / 1.875, rel=1e-12)
    assert genealogy_ess(torch.full((16, 2), 5.0, dtype=torch.float64), [pairs]) == 16.0


def _ar1(length: int, chains: int, phi: float, seed: int) -> torch.Tensor:
    """``(T, C)`` stationary AR(1) chains with unit variance: autocorrelation time ``(1 + phi) / (1 - phi)``."""
    noise = torch.randn(length, chains, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    series = torch.empty_like(noise)
    series[0] = noise[0]
    for t in range(1, length):
        series[t] = phi * series[t - 1] + math.sqrt(1 - phi**2) * noise[t]
    return series


def test_multichain_ess_of_an_ar1_chain_is_its_length_over_the_autocorrelation_time():
    slow = _ar1(16000, 1, 0.5, seed=0)  # tau = 3
    assert multichain_ess(slow[:, :, None]) == pytest.approx(16000 / 3, rel=0.1)
    fast = _ar1(16000, 1, 0.0, seed=1)  # tau = 1
    assert multichain_ess(fast[:, :, None]) == pytest.approx(16000, rel=0.1)
    both = torch.stack([slow, fast], dim=2)  # variance ratios averaged: T C / mean(tau) = 16000 / 2
    assert multichain_ess(both) == pytest.approx(8000, rel=0.1)
    constant = torch.stack([slow, torch.ones_like(slow)], dim=2)  # a constant statistic is left out
    assert multichain_ess(constant) == pytest.approx(multichain_ess(slow[:, :, None]), rel=1e-12)


def test_multichain_ess_of_chains_that_disagree_is_a_few_draws():
    agree = _ar1(250, 64, 0.0, seed=2)  # independent draws; 64 chains estimate the chain means' variance well
    assert multichain_ess(agree[:, :, None]) > 0.5 * 16000
    # the same chains around means -1 and 1: the between-chain variance (1) enters every autocorrelation as
    # rho_k = 1 - W / (W + B) = 1/2, so tau = -1 + 2 (1 + (T - 1) / 2) = T and the ESS is the number of chains
    disagree = agree + torch.tensor([-1.0, 1.0], dtype=torch.float64).repeat(32)
    assert multichain_ess(disagree[:, :, None]) == pytest.approx(64, rel=0.1)


def test_multichain_ess_short_or_antithetic_chains_count_in_full():
    assert multichain_ess(torch.randn(3, 2, 1, dtype=torch.float64)) == 6.0
    alternating = torch.tensor([1.0, -1.0] * 50, dtype=torch.float64)[:, None, None].repeat(1, 3, 1)
    assert multichain_ess(alternating) == 300.0


def _direct_multichain_ess(traces: torch.Tensor) -> float:
    """The formula of :func:`multichain_ess`'s docstring, with the autocovariances summed directly (no FFT)."""
    length, chains, count = traces.shape
    total = length * chains
    centred = traces - traces.mean(0)
    autocovariance = torch.stack([(centred[: length - k] * centred[k:]).sum(0) / length for k in range(length)])
    within, between = traces.var(dim=0).mean(0), traces.mean(0).var(dim=0)
    var_plus = (length - 1) / length * within + between
    rho = 1 - (within - autocovariance.mean(1)) / var_plus
    taus = []
    for f in range(count):
        tau = -1.0
        for k in range(0, length - 1, 2):
            if float(rho[k, f] + rho[k + 1, f]) <= 0:
                break
            tau += 2 * float(rho[k, f] + rho[k + 1, f])
        taus.append(max(tau, 1 / math.log10(max(total, 10))))
    replicated = chains * var_plus / between
    return min(total, total / (sum(taus) / count), float(count / (1 / replicated).sum()))


@pytest.mark.parametrize(("length", "chains", "phi"),
                         [(60, 3, 0.8), (41, 2, 0.3), (200, 5, 0.95), (60, 3, -0.9), (5, 2, -0.9)])
def test_multichain_ess_is_the_formula_of_its_docstring(length, chains, phi):
    traces = torch.stack([_ar1(length, chains, phi, seed=5), _ar1(length, chains, phi / 2, seed=6) ** 2], dim=2)
    assert multichain_ess(traces) == pytest.approx(_direct_multichain_ess(traces), rel=1e-10)
    assert multichain_ess(traces.float()) == pytest.approx(multichain_ess(traces.float().double()), rel=1e-12)


def test_multichain_ess_of_four_steps_of_constant_chains_that_disagree():
    traces = torch.tensor([[[0.0], [1.0]]], dtype=torch.float64).repeat(4, 1, 1)  # (T=4, C=2, F=1)
    # no within-chain variance: every rho is 1, so tau = -1 + 2 (2 + 2) = 7 and the ESS is 8 / 7
    assert multichain_ess(traces) == pytest.approx(8 / 7, rel=1e-12)
    assert multichain_ess(torch.ones(10, 3, 2, dtype=torch.float64)) == 30.0, "nothing varies: counted in full"


def test_two_short_antithetic_chains_that_disagree_count_as_replicates():
    alternating = torch.tensor([(-1.0) ** t for t in range(20)], dtype=torch.float64)
    traces = (alternating[:, None] + torch.tensor([-0.2, 0.2], dtype=torch.float64))[:, :, None]
    # tau is floored, so the cap binds: C var_plus / B = 2 (19/20 * 20/19 + 0.08) / 0.08 = 27
    assert multichain_ess(traces) == pytest.approx(27.0, rel=1e-12)
