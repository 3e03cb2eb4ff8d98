"""End to end on generators with known answers: log_volume -> log_weights -> resample recovers the target."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from gendebias.generators import Ramp
from gendebias.geometry import effective_sample_size, log_volume, log_weights, resample

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


def activation_patterns(mlp, latents):
    """``(N, units)`` bool: which side of its kink every leaky-ReLU unit is on, from the weight matrices."""
    layers = [module for module in mlp if isinstance(module, nn.Linear)]
    slope = next(module for module in mlp if isinstance(module, nn.LeakyReLU)).negative_slope
    patterns, hidden = [], latents
    with torch.no_grad():
        for layer in layers[:-1]:
            hidden = hidden @ layer.weight.T + layer.bias
            patterns.append(hidden > 0)
            hidden = torch.where(hidden > 0, hidden, slope * hidden)
    return torch.cat(patterns, dim=1)


def tile_jacobians(mlp, patterns):
    """``(T, D, d)``: each tile's Jacobian ``W_L diag(s_{L-1}) ... diag(s_1) W_1``, ``s`` = 1 or the slope."""
    layers = [module for module in mlp if isinstance(module, nn.Linear)]
    slope = next(module for module in mlp if isinstance(module, nn.LeakyReLU)).negative_slope
    with torch.no_grad():
        jacobian = layers[0].weight.expand(patterns.shape[0], -1, -1)
        start = 0
        for layer in layers[1:]:
            width = jacobian.shape[1]
            gains = torch.where(patterns[:, start:start + width], 1.0, slope).to(jacobian.dtype)
            jacobian = layer.weight @ (gains[:, :, None] * jacobian)
            start += width
    return jacobian


class Tiles:
    """The tiles a dense grid of the box meets, each with its exact area-uniform mass (midpoint rule, one cell per
    grid point, volume factor from the tile's explicit Jacobian): nothing here calls the library's geometry."""

    def __init__(self, mlp, points_per_side):
        self.mlp = mlp
        centres = (torch.arange(points_per_side, dtype=torch.float64) + 0.5) / points_per_side * 2 - 1
        packed = np.packbits(activation_patterns(mlp, torch.cartesian_prod(centres, centres)).numpy(), axis=1)
        keys, first, cells = np.unique(packed, axis=0, return_index=True, return_counts=True)
        self.index = {key.tobytes(): tile for tile, key in enumerate(keys)}
        grid = torch.cartesian_prod(centres, centres)[torch.from_numpy(first)]
        volume = torch.linalg.svdvals(tile_jacobians(mlp, activation_patterns(mlp, grid))).prod(dim=1)
        mass = torch.from_numpy(cells).double() * volume
        self.mass = mass / mass.sum()

    def of(self, latents):
        """Tile index of each latent; -1 for a tile the grid never met."""
        packed = np.packbits(activation_patterns(self.mlp, latents).numpy(), axis=1)
        return torch.tensor([self.index.get(row.tobytes(), -1) for row in packed])


def test_resampled_mass_per_tile_matches_quadrature_on_a_leaky_relu_mlp(mlp):
    generator = mlp([2, 64, 64, 3], seed=11)
    tiles = Tiles(generator, 1000)
    mass = tiles.mass
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

    def binned_counts(latents):
        """Counts per bin; a tile the grid never met joins the last (smallest-mass) bin."""
        tile = tiles.of(latents)
        bin_index = torch.where(tile >= 0, bin_of_tile[tile.clamp_min(0)], bins - 1)
        return torch.bincount(bin_index, minlength=bins).double()

    pool = box_latents(400_000, seed=5)
    weights = log_weights(log_volume(generator, pool, chunk_size=100_000), target="uniform")
    debiased_p = stats.chisquare(binned_counts(pool[resample(weights, draws, seed=9)]), expected).pvalue
    naive_p = stats.chisquare(binned_counts(pool[:draws]), expected).pvalue
    assert debiased_p > 0.01
    assert naive_p < 0.01
