"""Improved precision and recall of a generated feature set against a real one.

Kynkäänniemi, Karras, Laine, Lehtinen and Aila, "Improved Precision and Recall Metric for Assessing Generative
Models", NeurIPS 2019 (arXiv:1904.06991), §2. Each set's manifold is estimated as the union of balls around its
points, each ball's radius the distance to the point's k-th nearest neighbour in its own set (``NND_k``). With real
features ``x_1..x_N`` and generated ``y_1..y_M`` (the field's convention, kept here: **real first, generated
second**):

    precision = 1/M sum_i 1[ exists j: ||y_i - x_j|| <= NND_k(x_j) ]      (generated samples on the real manifold)
    recall    = 1/N sum_j 1[ exists i: ||x_j - y_i|| <= NND_k(y_i) ]      (real samples on the generated manifold)

**Weighted** (``weights`` ``w_i >= 0``, importance weights of ``generated``, not normalised, not logs): the metric
of a resample of ``M`` draws from the weighted pool, with each sample's random count replaced by its expectation
``c_i = M w_i / sum_l w_l`` (``c_i = 1`` for uniform weights):

    precision_w = sum_i c_i 1[y_i on the real manifold] / M  =  sum_i w_i 1[...] / sum_i w_i
    NND_k^w(y_i) = min{ r : sum_{l: ||y_i - y_l|| <= r} c_l >= k + 1 }      (only points with c_i > 0)
    recall_w    = 1/N sum_j 1[ sum_{i: ||x_j - y_i|| <= NND_k^w(y_i)} c_i >= 1 ]

So the generated manifold is built from the points with positive weight, each ball holds ``k + 1`` points' worth of
expected count (its centre's included), and a real point is recalled when the balls around it hold at least one
point's worth. For uniform weights this is the unweighted metric; for integer weights summing to ``M`` it is the
unweighted metric of the set in which ``y_i`` appears ``w_i`` times (sums are compared with a relative allowance of
:data:`~gendebias.evaluation._inputs.MASS_TOLERANCE` for rounding).
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


class PrecisionRecall(NamedTuple):
    """Improved precision and recall, each in ``[0, 1]``."""

    precision: float
    recall: float


def precision_recall(real: FeaturesLike, generated: FeaturesLike, *, k: int = 3, weights: FeaturesLike | None = None,
                     chunk_size: int | None = None) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al. 2019; weighted form in the module docstring).

    Args:
        real: ``(N, F)`` real features (tensor or array), ``N > k``; first, as in the field's libraries.
        generated: ``(M, F)`` generated features, ``M > k``.
        k: neighbour whose distance sets each ball's radius (3 in the paper).
        weights: ``(M,)`` non-negative importance weights of ``generated`` (any positive scale), or None.
        chunk_size: points per side of each distance block (default
            :data:`~gendebias.evaluation.neighbours.DISTANCE_CHUNK`); memory never grows with ``N x M``.

    Returns:
        ``PrecisionRecall(precision, recall)``, computed in the features' dtype (float32 stays float32).
    """
    k = check_positive_int(k, "k")
    real, generated = check_pair(real, generated, real_minimum=k + 1, generated_minimum=k + 1)
    counts = expected_counts(weights, generated.shape[0])
    positive = counts > 0
    support, support_counts = generated[positive], counts[positive]
    masses = None if weights is None else support_counts  # None: every sample counts once, the cheaper path
    real_radii = knn_radii(real, k, chunk_size=chunk_size)
    generated_radii = knn_radii(support, k, masses=masses, chunk_size=chunk_size)
    # Real rows, generated columns: the same orientation as the real k-NN pass, so a generated copy of a real point
    # gets bitwise the distances its original had.
    on_real = torch.zeros(support.shape[0], dtype=torch.bool)
    recalled_mass = torch.zeros(real.shape[0], dtype=torch.float64)
    for rows, cols, block in distance_blocks(real, support, chunk_size=chunk_size):
        on_real[cols] |= (block <= real_radii[rows, None]).any(dim=0)
        inside = block <= generated_radii[cols]
        recalled_mass[rows] += mass_inside(inside, None if masses is None else masses[cols])
    precision = float(support_counts[on_real].sum()) / generated.shape[0]
    recall = float((recalled_mass >= 1 - MASS_TOLERANCE).double().mean())
    return PrecisionRecall(precision, recall)
