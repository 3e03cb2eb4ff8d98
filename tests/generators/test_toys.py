"""The analytic toys' closed forms agree with log_volume: they are oracles for the rest of the suite."""

import math

import torch

from gendebias.generators import Parabola, Ramp, Tent
from gendebias.geometry import is_piecewise_affine, log_volume, tile_codes


def test_ramp_log_volume_is_closed_form():
    ramp = Ramp(slope=3.0, kink=0.2)
    volumes = log_volume(ramp, torch.tensor([[0.5, 0.0], [-0.5, 0.3]], dtype=torch.float64))
    torch.testing.assert_close(volumes, torch.tensor([ramp.ramp_log_volume(), 0.0], dtype=torch.float64))


def test_parabola_arc_length_is_the_integral_of_exp_log_volume():
    parabola = Parabola(curvature=2.0)
    points = 200_000
    t = ((torch.arange(points, dtype=torch.float64) + 0.5) / points * 2 - 1)[:, None]
    speed = log_volume(parabola, t, chunk_size=50_000).exp()
    assert abs(float(speed.sum()) * 2 / points - parabola.arc_length(1.0)) < 1e-8
    torch.testing.assert_close(speed, torch.sqrt(1 + (4 * t[:, 0]) ** 2))
    assert not is_piecewise_affine(parabola, t[:1])


def test_tent_tile_areas_match_quadrature():
    tent = Tent(slope=2.0, step=3.0, kink=0.5)
    side = 400
    centres = (torch.arange(side, dtype=torch.float64) + 0.5) / side * 2 - 1
    grid = torch.cartesian_prod(centres, centres)
    area = log_volume(tent, grid).exp()
    assert torch.unique(tile_codes(tent, grid)).shape[0] == 4
    total = area.sum()
    for (right, upper), share in tent.tile_area_shares().items():
        inside = ((grid[:, 0] > 0) == right) & ((grid[:, 1] > tent.kink) == upper)
        assert math.isclose(float(area[inside].sum() / total), share, rel_tol=1e-9)
