"""Kernel Inception Distance: the unbiased squared MMD with a cubic polynomial kernel, averaged over subsets.

Bińkowski, Sutherland, Arbel and Gretton, "Demystifying MMD GANs", ICLR 2018 (arXiv:1801.01401), where KID is
introduced. With ``F`` features and the kernel ``kern(a, b) = (a.b / F + 1)^3``, for real ``x_1..x_n`` (first
argument, as in the field's libraries) and generated ``y_1..y_m``, the U-statistic

    MMD^2_u = sum_{i != j} kern(x_i, x_j) / (n (n - 1)) + sum_{i != j} kern(y_i, y_j) / (m (m - 1))
              - 2 sum_{i, j} kern(x_i, y_j) / (n m)

is computed on ``subsets`` random subsets of ``subset_size`` real and ``subset_size`` generated samples (drawn
without replacement, independently per subset, from ``seed``); KID is the mean over subsets and ``std`` their
standard deviation (what the field's libraries report next to KID). Unlike FID it is unbiased: for one distribution
its expectation is 0, so an estimate may be slightly negative. Kernel sums run in float64.

**Weighted** (``weights`` ``w_j >= 0`` of ``generated``, any scale, not logs): subsets are drawn from the samples
with positive weight, and within a subset the generated terms become weighted U- and V-statistics:

    sum_{i != j} w_i w_j kern(y_i, y_j) / sum_{i != j} w_i w_j   and   sum_{i, j} w_j kern(x_i, y_j) / (n sum_j w_j)

the unbiased-for-fixed-weights forms (self-pairs ``i = j`` stay excluded). Uniform weights give the unweighted
value. Integer weights are *not* duplicated samples here: a duplicated pair would add ``kern(y, y)`` self-terms that
the U-statistic exists to exclude.

For the closed form on Gaussians: ``kern`` expands into moment tensors, so with ``M_r`` the ``r``-th moment tensor
of a distribution, ``MMD^2 = ||M3_p - M3_q||^2 / F^3 + 3 ||M2_p - M2_q||^2 / F^2 + 3 ||M1_p - M1_q||^2 / F``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gendebias.errors import DegenerateWeightsError, InvalidArgumentError
from gendebias.evaluation._inputs import FeaturesLike, check_pair, check_positive_int, check_seed, check_weights

_ONE = torch.ones((), dtype=torch.float64)


class KernelDistance(NamedTuple):
    """KID: the mean over subsets of the unbiased MMD², their standard deviation, and the subsets used."""

    value: float
    std: float
    subsets: int
    subset_size: int


def kernel_inception_distance(real: FeaturesLike, generated: FeaturesLike, *, weights: FeaturesLike | None = None,
                              subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> KernelDistance:
    """KID on given features (module docstring; Bińkowski et al. 2018).

    Args:
        real: ``(N, F)`` real features, ``N >= 2``; first, as in the field's libraries.
        generated: ``(M, F)`` generated features.
        weights: ``(M,)`` non-negative importance weights of ``generated`` (any positive scale), or None.
        subsets: number of random subsets (100 in the field's libraries).
        subset_size: samples per subset from each set (1000 there); at most ``N`` and the number of generated
            samples with positive weight, else an error says the largest that fits.
        seed: seeds the subset draws (CPU ``torch.Generator``); same seed, same answer.

    Returns:
        ``KernelDistance(value, std, subsets, subset_size)``.
    """
    real, generated = check_pair(real, generated, real_minimum=2, generated_minimum=2)
    subsets = check_positive_int(subsets, "subsets")
    subset_size = check_positive_int(subset_size, "subset_size", minimum=2)
    masses = torch.ones(generated.shape[0], dtype=torch.float64) if weights is None else check_weights(
        weights, generated.shape[0])
    support = masses.nonzero().flatten()
    fits = min(real.shape[0], support.numel())
    if fits < 2:
        raise DegenerateWeightsError("only one generated sample has positive weight; KID needs two")
    if subset_size > fits:
        raise InvalidArgumentError(
            f"subset_size={subset_size} is more than the {real.shape[0]} real and {support.numel()} generated "
            f"samples with positive weight allow; pass subset_size={fits} or fewer"
        )
    random = torch.Generator().manual_seed(check_seed(seed))
    values = torch.empty(subsets, dtype=torch.float64)
    for index in range(subsets):
        real_rows = torch.randperm(real.shape[0], generator=random)[:subset_size]
        generated_rows = support[torch.randperm(support.numel(), generator=random)[:subset_size]]
        values[index] = squared_mmd(real[real_rows], generated[generated_rows], masses[generated_rows])
    std = float(values.std()) if subsets > 1 else 0.0
    return KernelDistance(float(values.mean()), std, subsets, subset_size)


def squared_mmd(real: Tensor, generated: Tensor, masses: Tensor) -> Tensor:
    """Unbiased weighted ``MMD^2`` (module docstring) of ``(n, F)`` real and ``(m, F)`` generated features with
    ``(m,)`` positive float64 ``masses``, as a float64 scalar tensor."""
    real, generated = real.to(torch.float64), generated.to(torch.float64)
    real_kernel = _kernel(real, real)
    real_term = (real_kernel.sum() - real_kernel.trace()) / (real.shape[0] * (real.shape[0] - 1))
    generated_kernel = _kernel(generated, generated)
    total = masses.sum()
    pair_mass = total**2 - (masses * masses).sum()
    generated_term = (masses @ generated_kernel @ masses - (masses * masses * generated_kernel.diagonal()).sum())
    cross_term = (_kernel(real, generated) @ masses).sum() / (real.shape[0] * total)
    return real_term + generated_term / pair_mass - 2 * cross_term


def _kernel(a: Tensor, b: Tensor) -> Tensor:
    """``(a.b / F + 1)^3`` for every pair of rows: ``(n, m)`` float64."""
    return torch.addmm(_ONE, a, b.T, alpha=1.0 / a.shape[1]).pow_(3)
