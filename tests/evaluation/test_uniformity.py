"""Uniformity tests on the analytic toys: exact and debiased samples pass, naive ones fail."""

import math

import numpy as np
import pytest
import torch

from gendebias.errors import InvalidArgumentError
from gendebias.evaluation import chi_square_test, ks_test
from gendebias.generators import Parabola, Tent
from gendebias.geometry import log_volume, log_weights, resample

TILES = [(False, False), (False, True), (True, False), (True, True)]


def tile_counts(tent, latents):
    """Counts per tile of ``Tent``, in the order of ``TILES``: keyed by ``(z1 > 0, z2 > kink)``."""
    index = 2 * (latents[:, 0] > 0).long() + (latents[:, 1] > tent.kink).long()
    return torch.bincount(index, minlength=4)


def debiased(generator, latents, n, seed):
    """Area-uniform draws by the library's own route: log-volumes, uniform-target weights, multinomial resampling."""
    weights = log_weights(log_volume(generator, latents), rho=1.0, target="uniform")
    return latents[resample(weights, n, seed=seed)]


def test_chi_square_of_a_hand_computed_case():
    """O = (30, 70), shares (1/2, 1/2): X^2 = (20^2 + 20^2) / 50 = 16, p = P(chi^2_1 >= 16) = erfc(sqrt(8))."""
    result = chi_square_test(torch.tensor([30, 70]), [0.5, 0.5])
    assert result.statistic == pytest.approx(16.0)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(8)), rel=1e-9)


def test_tent_tiles_pass_when_area_uniform_and_fail_when_naive():
    tent = Tent()
    shares = torch.tensor([tent.tile_area_shares()[tile] for tile in TILES])
    pool = torch.rand(100_000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    exact = torch.multinomial(shares, 5000, replacement=True, generator=torch.Generator().manual_seed(1))
    assert chi_square_test(torch.bincount(exact, minlength=4), shares).p_value > 0.01
    assert chi_square_test(tile_counts(tent, debiased(tent, pool, 5000, seed=2)), shares).p_value > 0.01
    naive = chi_square_test(tile_counts(tent, pool[:5000]), shares)
    assert naive.p_value < 1e-6


def parabola_cdf(parabola):
    """Exact CDF of the latent ``t`` when points are uniform in arc length on the curve."""
    total = parabola.arc_length(1.0)
    return lambda t: torch.tensor([parabola.arc_length(float(u)) / total for u in t], dtype=torch.float64)


def test_parabola_passes_kolmogorov_smirnov_when_arc_length_uniform_and_fails_when_naive():
    parabola = Parabola()
    cdf = parabola_cdf(parabola)
    generator = torch.Generator().manual_seed(3)
    # exact draws by rejection: propose t ~ U(-1, 1), accept with probability |G'(t)| / max |G'|
    proposals = torch.rand(40_000, generator=generator, dtype=torch.float64) * 2 - 1
    speed = torch.sqrt(1 + (2 * parabola.curvature * proposals) ** 2)
    top_speed = math.sqrt(1 + (2 * parabola.curvature) ** 2)
    accepted = proposals[torch.rand(40_000, generator=generator, dtype=torch.float64) < speed / top_speed][:3000]
    assert accepted.numel() == 3000
    assert ks_test(accepted, cdf).p_value > 0.01
    pool = torch.rand(100_000, 1, generator=generator, dtype=torch.float64) * 2 - 1
    assert ks_test(debiased(parabola, pool, 3000, seed=4)[:, 0], cdf).p_value > 0.01
    naive = ks_test(pool[:3000, 0], cdf)
    assert naive.p_value < 1e-6
    assert naive.statistic > 0.05


def test_ks_statistic_of_a_hand_computed_case():
    """Samples (0.1, 0.4, 0.9) against U(0, 1): D = max(1/3 - 0.1, 2/3 - 0.4, 1 - 0.9, 0.1, 0.4 - 1/3, 0.9 - 2/3)
    = 2/3 - 0.4."""
    result = ks_test(np.array([0.9, 0.1, 0.4]), lambda t: t)
    assert result.statistic == pytest.approx(2 / 3 - 0.4, rel=1e-12)
    from scipy.stats import kstest

    assert result.p_value == pytest.approx(kstest([0.1, 0.4, 0.9], "uniform", method="exact").pvalue, rel=1e-9)


def test_chi_square_refuses_bins_too_small_for_its_approximation():
    with pytest.raises(InvalidArgumentError, match="merge small bins"):
        chi_square_test([10, 2], [0.9, 0.1])
    with pytest.raises(InvalidArgumentError, match="positive"):
        chi_square_test([10, 0], [1.0, 0.0])
