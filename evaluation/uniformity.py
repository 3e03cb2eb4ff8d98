"""Goodness-of-fit tests of a sample against an exact distribution: is a debiased sample really uniform?

On the analytic toys (:mod:`gendebias.generators.toys`) the answer is known in closed form: ``Tent`` gives the
exact area share of each of its tiles, ``Ramp`` that of its ramp, ``Parabola`` the arc-length CDF of its curve. A
sample that is uniform on the surface must match them; naive latent sampling does not.

* :func:`chi_square_test`: Pearson's chi-square test of counts per tile (or bin) ``O_k`` against exact shares
  ``s_k``, with ``n = sum_k O_k``: ``X^2 = sum_k (O_k - n s_k)^2 / (n s_k)``, p-value ``P(chi^2_{K-1} >= X^2)``
  (the regularised upper incomplete gamma function ``Q((K - 1) / 2, X^2 / 2)``, from torch). The chi-square law is
  the large-sample limit: every expected count ``n s_k`` must be at least 5.
* :func:`ks_test`: the one-sample Kolmogorov-Smirnov test of 1-D samples against an exact CDF ``F``:
  ``D = sup_x |F_n(x) - F(x)| = max_i max(i / n - F(x_(i)), F(x_(i)) - (i - 1) / n)`` on the sorted sample, p-value
  ``P(D_n >= D)`` from the exact distribution of ``D_n`` (``scipy.stats.kstwo``; scipy is imported here only, when
  called: ``pip install 'gendebias[evaluation]'``).

Both assume independent draws. A weighted pool is not one: resample it first (:func:`gendebias.geometry.resample`),
then test the draws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError, UnsupportedError
from gendebias.evaluation._inputs import check_vector

MINIMUM_EXPECTED = 5.0
"""Smallest expected count per bin for which the chi-square approximation is trusted."""


class GoodnessOfFit(NamedTuple):
    """A test statistic and its p-value: the probability of a statistic at least as large if the sample really
    came from the exact distribution (small p: it did not)."""

    statistic: float
    p_value: float


def chi_square_test(counts: Any, shares: Any) -> GoodnessOfFit:
    """Pearson's chi-square test of observed ``counts`` ``(K,)`` against exact ``shares`` ``(K,)`` (module docstring).

    Args:
        counts: non-negative counts of samples per tile or bin, e.g. ``torch.bincount(tile_index, minlength=K)``.
        shares: exact probability of each tile or bin; normalised here, all must be positive.

    Returns:
        ``GoodnessOfFit(statistic=X^2, p_value)`` with ``K - 1`` degrees of freedom.
    """
    observed = check_vector(counts, "counts")
    expected_shares = check_vector(shares, "shares")
    if observed.shape != expected_shares.shape or observed.numel() < 2:
        raise InvalidArgumentError(f"counts and shares need the same length >= 2, got {observed.numel()} and "
                                   f"{expected_shares.numel()}")
    if bool((expected_shares <= 0).any()):
        raise InvalidArgumentError("every share must be positive; drop bins that cannot hold samples")
    expected = float(observed.sum()) * expected_shares / expected_shares.sum()
    if float(expected.min()) < MINIMUM_EXPECTED:
        raise InvalidArgumentError(
            f"the smallest expected count is {float(expected.min()):.3g}; the chi-square approximation needs at least "
            f"{MINIMUM_EXPECTED:g} per bin: draw more samples or merge small bins"
        )
    statistic = float(((observed - expected) ** 2 / expected).sum())
    degrees = observed.numel() - 1
    p_value = torch.special.gammaincc(torch.tensor(degrees / 2, dtype=torch.float64),
                                      torch.tensor(statistic / 2, dtype=torch.float64))
    return GoodnessOfFit(statistic, float(p_value))


def ks_test(samples: Any, cdf: Callable[[Tensor], Tensor]) -> GoodnessOfFit:
    """One-sample two-sided Kolmogorov-Smirnov test of ``samples`` ``(N,)`` against an exact ``cdf``.

    Args:
        samples: 1-D real values (tensor or array), independent draws.
        cdf: the exact CDF, mapping a float64 tensor of values to a tensor of the same shape in ``[0, 1]``.

    Returns:
        ``GoodnessOfFit(statistic=D, p_value)`` with the exact p-value of ``D_n`` (scipy).
    """
    values = check_vector(samples, "samples", non_negative=False).sort().values
    if values.numel() == 0:
        raise InvalidArgumentError("samples is empty")
    cumulative = torch.as_tensor(cdf(values), dtype=torch.float64)
    if cumulative.shape != values.shape or bool(((cumulative < 0) | (cumulative > 1)).any()):
        raise InvalidArgumentError("cdf must map an (N,) tensor to (N,) values in [0, 1]")
    count = values.numel()
    ranks = torch.arange(1, count + 1, dtype=torch.float64)
    statistic = float(torch.maximum(ranks / count - cumulative, cumulative - (ranks - 1) / count).max())
    try:
        from scipy.stats import kstwo
    except ImportError:
        raise UnsupportedError("ks_test needs scipy for the p-value: pip install 'gendebias[evaluation]'") from None
    return GoodnessOfFit(statistic, float(kstwo.sf(statistic, count)))

