"""Density and coverage of a generated feature set against a real one.

Naeem, Oh, Uh, Choi and Yoo, "Reliable Fidelity and Diversity Metrics for Generative Models", ICML 2020
(arXiv:2002.09797), §3. Only the real set's k-NN balls are used (``NND_k(x_j)``: distance from ``x_j`` to its k-th
nearest real neighbour other than itself), which makes both robust to generated outliers. Real features
``x_1..x_N`` first, generated ``y_1..y_M`` second, as in the field's libraries:

    density  = 1/(k M) sum_i sum_j 1[ ||y_i - x_j|| <= NND_k(x_j) ]        (how many real balls hold each sample)
    coverage = 1/N sum_j 1[ exists i: ||y_i - x_j|| <= NND_k(x_j) ]         (real balls holding any sample)

Density is 1 in expectation when both sets come from the same distribution, and is not bounded by 1; for two
*identical* sets it is exactly ``(k + 1) / k``, since each real ball holds its centre and its ``k`` neighbours.

**Weighted** (``weights`` ``w_i >= 0`` of ``generated``, any scale, not logs), with the expected counts
``c_i = M w_i / sum_l w_l`` of a resample of ``M`` draws in place of its random counts:

    density_w  = sum_i c_i sum_j 1[...] / (k M)  =  sum_i w_i sum_j 1[...] / (k sum_i w_i)
    coverage_w = 1/N sum_j 1[ sum_{i: ||y_i - x_j|| <= NND_k(x_j)} c_i >= 1 ]

A real ball is covered when it holds at least one sample's worth of expected count. Uniform weights give the
unweighted values; integer weights summing to ``M`` give those of the set in which ``y_i`` appears ``w_i`` times.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from gendebias.evaluation._inputs import (
    MASS_TOLERANCE,
    FeaturesLike,
    check_pair,
    check_positive_int,
    expected_counts,
)
from gendebias.evaluation.neighbours import distance_blocks, knn_radii, mass_inside


class DensityCoverage(NamedTuple):
    """Density (``>= 0``, 1 when the distributions match) and coverage (in ``[0, 1]``)."""

    density: float
    coverage: float


def density_coverage(real: FeaturesLike, generated: FeaturesLike, *, k: int = 5, weights: FeaturesLike | None = None,
                     chunk_size: int | None = None) -> DensityCoverage:
    """Density and coverage (Naeem et al. 2020; weighted form in the module docstring).

    Args:
        real: ``(N, F)`` real features (tensor or array), ``N > k``; first, as in the field's libraries.
        generated: ``(M, F)`` generated features.
        k: neighbour whose distance sets each real ball's radius (5 in the paper).
        weights: ``(M,)`` non-negative importance weights of ``generated`` (any positive scale), or None.
        chunk_size: points per side of each distance block; memory never grows with ``N x M``.

    Returns:
        ``DensityCoverage(density, coverage)``.
    """
    k = check_positive_int(k, "k")
    real, generated = check_pair(real, generated, real_minimum=k + 1)
    counts = expected_counts(weights, generated.shape[0])
    positive = counts > 0
    support, support_counts = generated[positive], counts[positive]
    real_radii = knn_radii(real, k, chunk_size=chunk_size)

    balls_holding = torch.zeros(support.shape[0], dtype=torch.float64)
    mass_in_ball = torch.zeros(real.shape[0], dtype=torch.float64)
    for rows, cols, block in distance_blocks(real, support, chunk_size=chunk_size):  # the real k-NN pass's orientation
        inside = block <= real_radii[rows, None]
        balls_holding[cols] += inside.sum(dim=0)
        mass_in_ball[rows] += mass_inside(inside, None if weights is None else support_counts[cols])
    density = float(support_counts @ balls_holding) / (k * generated.shape[0])
    coverage = float((mass_in_ball >= 1 - MASS_TOLERANCE).double().mean())
    return DensityCoverage(density, coverage)
