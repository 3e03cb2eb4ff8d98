"""Fréchet distance between Gaussians fitted to a real and a generated feature set (FID on InceptionV3 features).

Heusel, Ramsauer, Unterthiner, Nessler and Hochreiter, "GANs Trained by a Two Time-Scale Update Rule Converge to a
Local Nash Equilibrium", NeurIPS 2017 (arXiv:1706.08500), where FID is introduced. With the mean ``mu_r``
and covariance ``S_r`` of the real features (first argument, as in the field's libraries) and ``mu_g``, ``S_g`` of
the generated ones:

    d^2 = ||mu_r - mu_g||^2 + tr(S_r) + tr(S_g) - 2 tr((S_r^1/2 S_g S_r^1/2)^1/2)

The last trace equals the usual ``tr((S_r S_g)^1/2)`` (same non-zero eigenvalues) but is computed from symmetric
matrices only, in float64: ``S_r^1/2`` from an eigendecomposition with eigenvalues clamped at 0, then the
eigenvalues of the symmetric positive semi-definite ``S_r^1/2 S_g S_r^1/2``, clamped at 0, square-rooted and summed.
No complex ``sqrtm``, no imaginary parts to discard; a rank-deficient covariance (fewer samples than features) is
fine. The result is clamped at 0 (rounding can leave ``-1e-13`` for identical sets).

Covariances divide by ``N - 1`` (``numpy.cov``). **Weighted** (``weights`` ``w_i >= 0`` of ``generated``, any
scale, not logs), with normalised ``v_i = w_i / sum_l w_l``:

    mu_w = sum_i v_i y_i
    S_w  = sum_i v_i (y_i - mu_w)(y_i - mu_w)^T / (1 - sum_i v_i^2)

the unbiased covariance under reliability weights (``numpy.cov(..., aweights=w)``); ``1 / sum v_i^2`` is the
effective sample size, so ``1 - sum v_i^2`` is the ``(N - 1) / N`` of the unweighted case. Uniform weights give the
unweighted value. Integer weights are *not* duplicated samples here: duplicates would count as independent draws
and shrink the correction (``numpy.cov(..., fweights=w)``), which importance weights do not justify.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gendebias.errors import DegenerateWeightsError
from gendebias.evaluation._inputs import FeaturesLike, check_pair, check_positive_int, check_weights

MOMENT_CHUNK = 8192
"""Rows per chunk when accumulating a mean or covariance in float64."""


def frechet_distance(real: FeaturesLike, generated: FeaturesLike, *, weights: FeaturesLike | None = None,
                     chunk_size: int | None = None) -> float:
    """Fréchet distance ``d^2`` between Gaussians fitted to ``real`` and ``generated`` (module docstring).

    Args:
        real: ``(N, F)`` real features, ``N >= 2``; first, as in the field's libraries.
        generated: ``(M, F)`` generated features, ``M >= 2``.
        weights: ``(M,)`` non-negative importance weights of ``generated`` (any positive scale), or None; at least
            two must be positive.
        chunk_size: rows per chunk of the float64 accumulation (default :data:`MOMENT_CHUNK`).

    Returns:
        ``d^2 >= 0`` as a float (squared feature units, like FID).
    """
    real, generated = check_pair(real, generated, real_minimum=2, generated_minimum=2)
    size = check_positive_int(MOMENT_CHUNK if chunk_size is None else chunk_size, "chunk_size")
    real_mean, real_covariance = moments(real, None, size)
    generated_mean, generated_covariance = moments(
        generated, None if weights is None else check_weights(weights, generated.shape[0]), size
    )
    real_root = _symmetric_sqrt(real_covariance)
    middle = real_root @ generated_covariance @ real_root
    root_trace = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    distance = ((real_mean - generated_mean) ** 2).sum() + real_covariance.trace() + generated_covariance.trace()
    return max(float(distance - 2 * root_trace), 0.0)


def moments(features: Tensor, weights: Tensor | None, chunk_size: int) -> tuple[Tensor, Tensor]:
    """``(mean (F,), covariance (F, F))`` in float64 of ``(N, F)`` features, accumulated ``chunk_size`` rows at a
    time; with ``(N,)`` weights the reliability-weighted forms of the module docstring."""
    count = features.shape[0]
    shares = torch.full((count,), 1.0 / count, dtype=torch.float64) if weights is None else weights / weights.sum()
    denominator = 1 - float((shares * shares).sum())
    if denominator <= 0:
        raise DegenerateWeightsError("only one generated sample has positive weight; a covariance needs two")
    mean = torch.zeros(features.shape[1], dtype=torch.float64)
    for start in range(0, count, chunk_size):
        mean += shares[start:start + chunk_size] @ features[start:start + chunk_size].to(torch.float64)
    covariance = torch.zeros(features.shape[1], features.shape[1], dtype=torch.float64)
    for start in range(0, count, chunk_size):
        centred = features[start:start + chunk_size].to(torch.float64) - mean
        covariance += (centred * shares[start:start + chunk_size, None]).T @ centred
    return mean, covariance / denominator


def _symmetric_sqrt(matrix: Tensor) -> Tensor:
    """``V diag(sqrt(max(lambda, 0))) V^T`` for a symmetric positive semi-definite float64 ``matrix``."""
    eigenvalues, eigenvectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T
