"""The labelled before/after figure: images keep their aspect ratio and the file is a real PNG."""

import torch

from gendebias.evaluation.pictures import Panel, before_after, grid_image


def test_grid_keeps_each_images_aspect_ratio_and_separates_tiles():
    images = torch.zeros(10, 1, 8, 4)  # tall images, -1 -> 0 after scaling
    grid = grid_image(images, columns=4)
    assert grid.shape == (3 * 9 - 1, 4 * 5 - 1)  # rows of 8 + 1 gap, columns of 4 + 1 gap
    assert grid[8, 0] == 1.0 and grid[0, 4] == 1.0 and grid[0, 0] == 0.5


def test_before_after_writes_a_labelled_png(tmp_path):
    panels = [Panel("naive", torch.rand(16, 1, 8, 8) * 2 - 1, torch.tensor([5.0, 5.0, 6.0])),
              Panel("debiased", torch.rand(16, 3, 8, 8) * 2 - 1, torch.tensor([1.0, 2.0, 13.0]))]
    path = before_after(panels, tmp_path / "figure.png", classes=["a", "b", "c"], suptitle="toy")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
