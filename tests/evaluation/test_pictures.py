"""The pictures: real PNGs of the size asked for, not blank, images at their true aspect ratio, and tile boundaries
that lie on the toys' known hyperplanes (every one of them found, nothing else drawn)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from gendebias.errors import InvalidArgumentError
from gendebias.evaluation._figure import DPI
from gendebias.evaluation.pictures import Panel, before_after, class_histograms, grid_image, panel_title
from gendebias.evaluation.tile_picture import tile_colours, tile_slice_picture
from gendebias.evaluation.tile_slice import LatentSlice, latent_slice, tile_boundaries
from gendebias.evaluation.tradeoff_picture import TradeOff, precision_recall_tradeoff
from gendebias.evaluation.volume_picture import log_volume_histogram
from gendebias.generators.toys import Ramp, Tent
from gendebias.geometry import log_volume, log_weights


def read_png(path, size_inches):
    """The written image as an (H, W, 4) array, checked to be a PNG of ``size_inches`` at the pictures' DPI and to
    hold a drawing (a good share of pixels neither white nor one flat colour)."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    width, height = size_inches
    assert abs(image.shape[0] - height * DPI) < 1 and abs(image.shape[1] - width * DPI) < 1, image.shape
    ink = (image[..., :3] < 0.95).any(axis=-1).mean()
    assert ink > 0.05, f"only {ink:.1%} of the pixels are not white"
    assert image[..., :3].std() > 0.1
    return image


def test_grid_keeps_each_images_aspect_ratio_and_separates_tiles():
    images = torch.zeros(10, 1, 8, 4)  # tall images, -1 -> 0 after scaling
    grid = grid_image(images, columns=4)
    assert grid.shape == (3 * 9 - 1, 4 * 5 - 1)  # rows of 8 + 1 gap, columns of 4 + 1 gap
    assert grid[8, 0] == 1.0 and grid[0, 4] == 1.0 and grid[0, 0] == 0.5


def test_rgb_faces_keep_their_64_by_64_shape_and_colours(tmp_path):
    images = -torch.ones(16, 3, 64, 64)
    images[:, 0] = 1.0  # pure red
    grid = grid_image(images, columns=8)
    assert grid.shape == (2 * 65 - 1, 8 * 65 - 1, 3)
    assert tuple(grid[10, 10]) == (1.0, 0.0, 0.0) and tuple(grid[64, 10]) == (1.0, 1.0, 1.0)
    panels = [Panel(panel_title("naive", rho=0.0, ess=64, distinct=64, count=64), images.repeat(4, 1, 1, 1),
                    torch.tensor([3.0, 1.0]))]
    side = 1.15 * 519 / DPI
    image = read_png(before_after(panels, tmp_path / "faces.png", count=64), (2.4 * side, side + 0.6))
    assert image.shape[1] > 2 * 519, "a 64 x 64 face grid is drawn at least a pixel per pixel"


def test_before_after_writes_a_labelled_png_with_method_rho_ess_and_distinct_in_each_title(tmp_path):
    title = panel_title("MaGNET tilted", rho=1.0, ess=914.2, distinct=958, count=1000, details="class KL 0.33")
    assert title == "MaGNET tilted, rho = 1\nESS 914 of 1,000, 958 distinct, class KL 0.33"
    panels = [Panel("naive", torch.rand(16, 1, 8, 8) * 2 - 1, torch.tensor([5.0, 5.0, 6.0])),
              Panel(title, torch.rand(16, 3, 8, 8) * 2 - 1, torch.tensor([1.0, 2.0, 13.0]))]
    path = before_after(panels, tmp_path / "figure.png", classes=["a", "b", "c"], suptitle="toy")
    read_png(path, (4.2 * 3.4, 4.8))


def test_class_histograms_draw_one_bar_group_per_class(tmp_path):
    histograms = {"naive": torch.tensor([10, 30, 60]), "MaGNET": np.array([0.2, 0.3, 0.5]),
                  "balanced": [33, 33, 34]}
    path = class_histograms(histograms, tmp_path / "classes.png", classes=["0", "1", "2"])
    image = read_png(path, (1.2 + 0.45 * 3 * math.sqrt(3), 4.2))
    assert image.shape[1] > 300
    with pytest.raises(InvalidArgumentError, match="same number of classes"):
        class_histograms({"a": [1, 2], "b": [1, 2, 3]}, tmp_path / "bad.png")


def test_log_volume_histogram_weights_the_ramps_pool_and_reports_the_ess(tmp_path):
    ramp = Ramp(slope=3.0, kink=0.0)
    pool = torch.rand(4000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pool = pool + 0.01 * torch.randn(4000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    volumes = log_volume(ramp, pool)
    path = log_volume_histogram(volumes, {"rho = 1": log_weights(volumes, rho=1.0),
                                          "rho = -1": log_weights(volumes, rho=-1.0)}, tmp_path / "volumes.png")
    read_png(path, (6.4, 4.2))
    with pytest.raises(InvalidArgumentError, match="shape"):
        log_volume_histogram(volumes, {"short": volumes[:10]}, tmp_path / "bad.png")


def test_precision_recall_tradeoff_draws_both_curves(tmp_path):
    curves = [TradeOff("MaGNET / Polarity", "rho", [-1.0, 0.0, 1.0], [0.9, 0.8, 0.7], [0.4, 0.5, 0.6]),
              TradeOff("truncation", "psi", [0.5, 0.7, 1.0], [0.95, 0.85, 0.8], [0.2, 0.35, 0.5])]
    read_png(precision_recall_tradeoff(curves, tmp_path / "tradeoff.png"), (5.6, 4.8))
    with pytest.raises(InvalidArgumentError, match=r"\[0, 1\]"):
        precision_recall_tradeoff([TradeOff("bad", "rho", [0.0], [1.5], [0.5])], tmp_path / "bad.png")


class Hinge(nn.Module):
    """``Linear(4, 6) -> ReLU -> Linear(6, 5)``: its tiles are cut by the six hyperplanes ``w_k . z + c_k = 0``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.first = nn.Linear(4, 6).double()
        self.second = nn.Linear(6, 5).double()

    def forward(self, latents):
        return self.second(torch.relu(self.first(latents)))


def crossings(piece: LatentSlice, line: tuple[float, float, float]) -> torch.Tensor:
    """(H, W) bool: the grid point is the first of a right or upper neighbour pair on opposite sides of the line
    ``alpha u + beta v + gamma = 0``."""
    alpha, beta, gamma = line
    side = (alpha * piece.u[None, :] + beta * piece.v[:, None] + gamma) > 0
    first = torch.zeros_like(side)
    first[:, :-1] |= side[:, :-1] != side[:, 1:]
    first[:-1, :] |= side[:-1, :] != side[1:, :]
    return first


def assert_boundaries_on(piece: LatentSlice, lines: list[tuple[float, float, float]]) -> None:
    """Every marked boundary point lies within one grid step of a known line; every known line crossing the slice is
    found: each grid pair it separates has its first point marked."""
    marked = tile_boundaries(piece.codes)
    step = max(float(piece.u[1] - piece.u[0]), float(piece.v[1] - piece.v[0]))
    rows, columns = marked.nonzero().unbind(1)
    coefficients = torch.tensor(lines, dtype=torch.float64)
    distance = (coefficients[:, 0] * piece.u[columns, None] + coefficients[:, 1] * piece.v[rows, None]
                + coefficients[:, 2]).abs() / coefficients[:, :2].norm(dim=1)
    assert marked.any()
    farthest = float(distance.min(dim=1).values.max())
    assert farthest <= step * (1 + 1e-9), f"a boundary pixel lies {farthest / step:.2f} grid steps from every line"
    for line in lines:
        crossed = crossings(piece, line)
        assert crossed.any(), f"the line {line} does not cross the slice; the test's slice is wrong"
        missed = int((crossed & ~marked).sum())
        assert missed == 0, f"line {line}: {missed} of {int(crossed.sum())} crossings are not marked"


def test_tent_slice_shows_its_two_breakpoints_and_four_tiles(tmp_path):
    tent = Tent(slope=2.0, step=3.0, kink=0.5)
    piece = latent_slice(tent, torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64),
                         resolution=(100, 100))
    assert_boundaries_on(piece, [(1.0, 0.0, 0.0), (0.0, 1.0, -tent.kink)])
    assert torch.unique(piece.codes).numel() == 4
    upper = piece.v[:, None] > tent.kink
    expected = 0.5 * torch.log1p(tent.slope**2 + tent.step**2 * upper.double()).expand(100, 100)
    torch.testing.assert_close(piece.log_volumes, expected)
    read_png(tile_slice_picture(piece, tmp_path / "tent.png", axis_names=("z1", "z2")), (6.0, 5.0))


def test_ramp_slice_has_one_boundary_at_its_kink():
    ramp = Ramp(slope=3.0, kink=0.3)
    piece = latent_slice(ramp, torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64),
                         resolution=(100, 100))
    assert_boundaries_on(piece, [(1.0, 0.0, -ramp.kink)])
    assert torch.unique(piece.codes).numel() == 2


def test_a_slice_through_a_4d_relu_network_finds_every_hyperplane_it_crosses(tmp_path):
    hinge = Hinge()
    origin = torch.tensor([0.1, -0.2, 0.3, 0.05], dtype=torch.float64)
    directions = torch.linalg.qr(torch.randn(4, 2, dtype=torch.float64,
                                             generator=torch.Generator().manual_seed(3))).Q.T
    piece = latent_slice(hinge, origin, directions, extent=(-2.0, 2.0, -2.0, 2.0), resolution=(150, 150))
    weights, biases = hinge.first.weight.detach(), hinge.first.bias.detach()
    lines = [(float(w @ directions[0]), float(w @ directions[1]), float(w @ origin + c))
             for w, c in zip(weights, biases, strict=True)]
    inside = [line for line in lines if bool(crossings(piece, line).any())]
    assert len(inside) >= 4, "the slice should cross most of the six hyperplanes"
    assert_boundaries_on(piece, inside)
    colours = tile_colours(piece)
    assert colours.shape == (150, 150, 3) and float(colours[tile_boundaries(piece.codes).numpy()].max()) == 0.0
    read_png(tile_slice_picture(piece, tmp_path / "hinge.png"), (6.0, 5.0))
