"""The islands' ESS estimate against the variance it claims to predict, measured over replicated populations."""

import pytest
import torch

from gendebias.geometry.ess import island_ess

ISLANDS, PER_ISLAND, FEATURES = 4, 50, 64


def populations(drift, replicates, seed):
    """``replicates`` populations of 4 islands x 50 particles x 64 statistics: every island's particles share a
    ``N(0, drift^2)`` offset per statistic (a drift the moves did not undo) plus independent ``N(0, 1)`` noise."""
    random = torch.Generator().manual_seed(seed)
    offsets = drift * torch.randn(replicates, ISLANDS, 1, FEATURES, generator=random, dtype=torch.float64)
    noise = torch.randn(replicates, ISLANDS, PER_ISLAND, FEATURES, generator=random, dtype=torch.float64)
    # particle i sits in island i % ISLANDS, as the SMC lays them out
    return (offsets + noise).transpose(1, 2).reshape(replicates, ISLANDS * PER_ISLAND, FEATURES)


@pytest.mark.parametrize("drift", [0.0, 0.12, 0.3])
def test_island_ess_matches_the_variance_of_the_population_mean_across_replicates(drift):
    values = populations(drift, 400, seed=1)
    count = values.shape[1]
    labels = torch.arange(count) % ISLANDS
    reported = torch.tensor([island_ess(v, labels) for v in values[:40]]).mean()
    one_draw = 1 + drift**2  # variance of one particle's statistic
    measured = one_draw / values.mean(1).var(0).mean()  # what one exact draw's variance buys, per statistic
    assert reported == pytest.approx(float(min(measured, count)), rel=0.25)
    if drift == 0.3:  # a shared drift of 0.3 sd per island leaves an ESS near 40 of 200
        assert reported < 60


def test_one_island_or_constant_statistics_give_the_population_size():
    values = torch.randn(100, 8, dtype=torch.float64)
    assert island_ess(values, torch.zeros(100, dtype=torch.long)) == 100.0
    assert island_ess(torch.ones(100, 8, dtype=torch.float64), torch.arange(100) % 4) == 100.0
