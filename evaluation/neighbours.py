"""k-nearest-neighbour balls of feature sets, computed in blocks: no ``N x M`` distance matrix is ever held.

Distances are squared Euclidean, ``||a||^2 + ||b||^2 - 2 a.b``, in the features' dtype, one block of at most
``chunk_size x chunk_size`` pairs at a time (:data:`DISTANCE_CHUNK` by default: 16 MiB of float32). Peak memory is
a few blocks plus the ``(N, k + 1)`` nearest lists, whatever ``N`` and ``M`` are.

The k-NN radius of a point is the distance to its k-th nearest neighbour *other than itself* (Kynkäänniemi et al.
2019, §2; Naeem et al. 2020, §3): the (k+1)-th smallest distance when the point itself (distance 0) is counted;
radii are clamped at 0.
With masses (expected counts of a resample, see :func:`gendebias.evaluation._inputs.expected_counts`) the radius is
the smallest ``r`` whose ball holds mass ``>= k + 1``, the point's own mass included: for integer masses that is the
k-NN radius of the set in which point ``i`` appears ``mass_i`` times.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from gendebias.evaluation._inputs import MASS_TOLERANCE, check_positive_int

DISTANCE_CHUNK = 2048
"""Points per block on each side when ``chunk_size`` is None."""


def distance_blocks(rows: Tensor, cols: Tensor, *, chunk_size: int | None = None
                    ) -> Iterator[tuple[slice, slice, Tensor]]:
    """Yield ``(row_slice, col_slice, block)``: ``block[a, b] = ||rows[row_slice][a] - cols[col_slice][b]||^2``,
    blocks of at most ``chunk_size x chunk_size``, rows outermost. ``rows`` ``(R, F)`` and ``cols`` ``(C, F)`` share
    a dtype; the blocks have it too. Not clamped at 0: rounding can leave a coincident pair at ``-1e-6`` (float32),
    which compares as "inside" any ball, as it should."""
    size = _chunk(chunk_size)
    col_norms = (cols * cols).sum(dim=1)
    for row_start in range(0, rows.shape[0], size):
        row_slice = slice(row_start, row_start + size)
        row_block = rows[row_slice]
        row_norms = (row_block * row_block).sum(dim=1, keepdim=True)
        for col_slice, partial in _partial_blocks(row_block, cols, col_norms, size):
            yield row_slice, col_slice, partial.add_(row_norms)


def _partial_blocks(row_block: Tensor, cols: Tensor, col_norms: Tensor, size: int) -> Iterator[tuple[slice, Tensor]]:
    """``(col_slice, ||b||^2 - 2 a.b)`` for each block of ``cols``: the squared distance less the row's ``||a||^2``,
    which orders a row's neighbours just as well, one pass over the block cheaper."""
    for col_start in range(0, cols.shape[0], size):
        col_slice = slice(col_start, col_start + size)
        yield col_slice, torch.addmm(col_norms[col_slice], row_block, cols[col_slice].T, alpha=-2.0)


def mass_inside(inside: Tensor, masses: Tensor | None) -> Tensor:
    """``(R,)`` float64 mass of the columns inside each row's test: ``sum_b inside[a, b] masses[b]`` for a ``(R, C)``
    bool block. With ``masses`` None (every column weighs 1) it is 1.0 where any column is inside, else 0.0: all a
    ``>= 1`` test needs, without a float64 copy of the block."""
    if masses is None:
        return inside.any(dim=1).to(torch.float64)
    return inside.to(torch.float64) @ masses


def _chunk(chunk_size: int | None) -> int:
    return check_positive_int(DISTANCE_CHUNK if chunk_size is None else chunk_size, "chunk_size")


def knn_radii(points: Tensor, k: int, *, masses: Tensor | None = None, chunk_size: int | None = None) -> Tensor:
    """Squared k-NN radius of each point of ``points`` ``(N, F)`` within the set itself: ``(N,)`` in its dtype.

    Without ``masses`` it is the (k+1)-th smallest squared distance (the point itself counts as the first). With
    ``masses`` ``(N,)`` float64, all positive, it is the smallest squared distance ``r`` with
    ``sum_{l: d_il <= r} masses_l >= (k + 1) (1 - MASS_TOLERANCE)``; rows whose ``2 (k + 1)`` nearest do not reach
    that mass are recomputed with twice as many nearest, until they do. Needs ``sum(masses) >= k + 1``.
    """
    count = 2 * (k + 1) if masses is not None else k + 1
    radii = torch.empty(points.shape[0], dtype=points.dtype, device=points.device)
    pending = torch.arange(points.shape[0], device=points.device)
    while pending.numel() > 0:
        count = min(count, points.shape[0])
        distances, indices = _nearest(points[pending], points, count, chunk_size=chunk_size)
        if masses is None:
            radii[pending] = distances[:, k]
            break
        reached = masses[indices].cumsum(dim=1) >= (k + 1) * (1 - MASS_TOLERANCE)
        found = reached.any(dim=1)
        if count == points.shape[0]:
            found = torch.ones_like(found)  # the whole set: rounding may leave the total a hair short of k + 1
            reached[:, -1] = True
        first = reached.to(torch.int8).argmax(dim=1)
        radii[pending[found]] = distances[found, first[found]]
        pending = pending[~found]
        count *= 2
    return radii


def _nearest(queries: Tensor, points: Tensor, count: int, *, chunk_size: int | None) -> tuple[Tensor, Tensor]:
    """``(distances, indices)``, each ``(Q, count)``: the ``count`` smallest squared distances (clamped at 0) from
    each query to ``points``, ascending, and the indices of those points. Each block keeps its own ``count``
    smallest per row; one final top-``count`` over those picks the row's nearest."""
    size = _chunk(chunk_size)
    col_norms = (points * points).sum(dim=1)
    distances, indices = [], []
    for start in range(0, queries.shape[0], size):
        row_block = queries[start:start + size]
        values, columns = [], []
        for col_slice, partial in _partial_blocks(row_block, points, col_norms, size):
            kept, order = partial.topk(min(count, partial.shape[1]), dim=1, largest=False, sorted=False)
            values.append(kept)
            columns.append(order.add_(col_slice.start))
        best, picked = torch.cat(values, dim=1).topk(count, dim=1, largest=False, sorted=True)
        distances.append(best.add_((row_block * row_block).sum(dim=1, keepdim=True)).clamp_(min=0))
        indices.append(torch.cat(columns, dim=1).gather(1, picked))
    return torch.cat(distances), torch.cat(indices)
