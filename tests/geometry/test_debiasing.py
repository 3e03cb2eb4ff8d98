"""End to end on generators with known answers: log_volume -> log_weights -> resample recovers the target."""

import math

import pytest
import torch
from scipy import stats

from gendebias.generators import Ramp
from gendebias.geometry import effective_sample_size, log_volume, log_weights, resample, tile_codes

POOL, DRAWS = 200_000, 20_000


def box_latents(count, seed):
    return torch.rand(count, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def ramp_share(latents, ramp):
    return float((latents[:, 0] > ramp.kink).double().mean())


def standard_error(share, draws, ess):
    """Resampling noise (``draws`` multinomial draws) plus the pool's own noise (``ess`` effective latents)."""
    return math.sqrt(share * (1 - share) * (1 / draws + 1 / ess))


@pytest.mark.parametrize("slope", [1.0, 3.0])
def test_uniform_target_on_the_ramp_matches_the_exact_area_share(slope):
    ramp = Ramp(slope=slope, kink=0.2)
    pool = box_latents(POOL, seed=int(slope))
    volumes = log_volume(ramp, pool)
    assert volumes.unique().tolist() == pytest.approx([0.0, ramp.ramp_log_volume()], abs=1e-12)
    weights = log_weights(volumes, rho=1.0, target="uniform")
    drawn = pool[resample(weights, DRAWS, seed=7)]
    exact = ramp.ramp_area_share()
    error = standard_error(exact, DRAWS, effective_sample_size(weights))
    assert abs(ramp_share(drawn, ramp) - exact) < 3 * error
    naive = ramp_share(pool[:DRAWS], ramp)
    assert abs(naive - exact) > 10 * error, "naive sampling puts (1 - c) / 2 of the outputs on the ramp"


@pytest.mark.parametrize("slope", [1.0, 3.0])
def test_gaussian_proposals_with_importance_correction_are_still_correct(slope):
    ramp = Ramp(slope=slope, kink=0.2)
    scale = 0.7
    raw = torch.randn(2 * POOL, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(11)) * scale
    pool = raw[(raw.abs() <= 1).all(dim=1)][:POOL]  # a Gaussian truncated to the box: its normaliser cancels
    log_proposal = -(pool**2).sum(dim=1) / (2 * scale**2)
    volumes = log_volume(ramp, pool)
    exact = ramp.ramp_area_share()
    corrected = log_weights(volumes, target="uniform", log_proposal=log_proposal)
    error = standard_error(exact, DRAWS, effective_sample_size(corrected))
    assert abs(ramp_share(pool[resample(corrected, DRAWS, seed=3)], ramp) - exact) < 3 * error
    uncorrected = log_weights(volumes, target="uniform")
    assert abs(ramp_share(pool[resample(uncorrected, DRAWS, seed=3)], ramp) - exact) > 5 * error


def tile_masses_by_quadrature(generator, points_per_side):
    """Exact area-uniform mass of each tile in the box: midpoint rule on a dense grid, ``exp(log_volume)`` per cell."""
    centres = (torch.arange(points_per_side, dtype=torch.float64) + 0.5) / points_per_side * 2 - 1
    grid = torch.cartesian_prod(centres, centres)
    codes = tile_codes(generator, grid)
    area = log_volume(generator, grid, chunk_size=100_000).exp()
    unique, inverse = torch.unique(codes, return_inverse=True)
    mass = torch.zeros(unique.shape[0], dtype=torch.float64).scatter_add_(0, inverse, area)
    return unique, mass / mass.sum()


def binned_counts(codes, tiles, bin_of_tile, bins):
    """Counts per bin of ``codes``; a tile the grid never saw joins the last (smallest-mass) bin."""
    position = torch.searchsorted(tiles, codes).clamp_max(tiles.shape[0] - 1)
    known = tiles[position] == codes
    bin_index = torch.where(known, bin_of_tile[position], torch.full_like(position, bins - 1))
    return torch.bincount(bin_index, minlength=bins).double()


def test_resampled_mass_per_tile_matches_quadrature_on_a_leaky_relu_mlp(mlp):
    generator = mlp([2, 64, 64, 3], seed=11)
    tiles, mass = tile_masses_by_quadrature(generator, 1000)
    draws = 8_000
    # group tiles (largest mass first) into bins of >= 20 expected draws; fixed before looking at any sample
    order = torch.argsort(mass, descending=True)
    bin_of_tile = torch.empty_like(order)
    bins, filled = 0, 0.0
    for tile in order.tolist():
        bin_of_tile[tile] = bins
        filled += float(mass[tile]) * draws
        if filled >= 20:
            bins, filled = bins + 1, 0.0
    bins += 1 if filled > 0 else 0
    bin_of_tile.clamp_(max=bins - 1)
    expected = torch.zeros(bins, dtype=torch.float64).scatter_add_(0, bin_of_tile, mass) * draws
    assert bins > 30, "enough bins for the test to have power"

    pool = box_latents(400_000, seed=5)
    weights = log_weights(log_volume(generator, pool, chunk_size=100_000), target="uniform")
    debiased = tile_codes(generator, pool[resample(weights, draws, seed=9)])
    debiased_p = stats.chisquare(binned_counts(debiased, tiles, bin_of_tile, bins), expected).pvalue
    naive_p = stats.chisquare(binned_counts(tile_codes(generator, pool[:draws]), tiles, bin_of_tile, bins),
                              expected).pvalue
    assert debiased_p > 0.01
    assert naive_p < 0.01
