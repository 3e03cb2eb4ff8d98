"""Blocked k-NN radii against a dense reference."""

import pytest
import torch

from gendebias.evaluation.neighbours import distance_blocks, knn_radii

from .conftest import dense_radii, dense_squared_distances


@pytest.mark.parametrize("chunk_size", [1, 7, 64, None])
def test_distance_blocks_tile_the_dense_matrix(chunk_size):
    generator = torch.Generator().manual_seed(0)
    rows, cols = torch.randn(50, 3, generator=generator, dtype=torch.float64), torch.randn(23, 3, generator=generator,
                                                                                           dtype=torch.float64)
    assembled = torch.full((50, 23), float("nan"), dtype=torch.float64)
    for row_slice, col_slice, block in distance_blocks(rows, cols, chunk_size=chunk_size):
        assert block.shape[0] <= (chunk_size or 2048) and block.shape[1] <= (chunk_size or 2048)
        assembled[row_slice, col_slice] = block
    torch.testing.assert_close(assembled, dense_squared_distances(rows, cols), rtol=0, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [5, 64, None])
@pytest.mark.parametrize("k", [1, 3])
def test_knn_radii_match_the_dense_reference(chunk_size, k):
    generator = torch.Generator().manual_seed(1)
    points = torch.randn(200, 4, generator=generator, dtype=torch.float64)
    expected = dense_radii(points, k)
    torch.testing.assert_close(knn_radii(points, k, chunk_size=chunk_size), expected, rtol=0, atol=1e-12)
    uniform = torch.ones(200, dtype=torch.float64)
    assert torch.equal(knn_radii(points, k, masses=uniform, chunk_size=chunk_size),
                       knn_radii(points, k, chunk_size=chunk_size))
    # light masses need far more than 2 (k + 1) neighbours: exercises the doubling rounds
    masses = torch.rand(200, generator=generator, dtype=torch.float64) ** 4
    masses = masses * (200 / masses.sum())
    torch.testing.assert_close(knn_radii(points, k, masses=masses, chunk_size=chunk_size),
                               dense_radii(points, k, masses), rtol=0, atol=1e-12)


def test_integer_masses_give_the_radii_of_the_duplicated_set():
    generator = torch.Generator().manual_seed(2)
    points = torch.randn(60, 2, generator=generator, dtype=torch.float64)
    masses = torch.randint(1, 4, (60,), generator=generator).to(torch.float64)
    duplicated = points.repeat_interleave(masses.long(), dim=0)
    first_copy = torch.cumsum(masses.long(), dim=0) - masses.long()
    torch.testing.assert_close(knn_radii(points, 3, masses=masses), knn_radii(duplicated, 3)[first_copy],
                               rtol=0, atol=1e-12)
