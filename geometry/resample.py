"""Draw indices into a pool of latents in proportion to their importance weights.

Schemes (``docs/design.md#resampling-schemes``); all take log weights (normalised or not) and an explicit ``seed``:

* ``multinomial``: ``n`` i.i.d. draws with replacement (inverse CDF on float64 cumulative weights; no 2^24
  category limit). Sampling-importance-resampling is asymptotically exact as the pool grows.
* ``systematic``: one uniform offset, ``n`` evenly spaced points on the CDF; lower variance than multinomial with
  the same expectation. The pool is visited in a random order (a periodic or sorted pool would otherwise alias
  with the evenly spaced points) and the output is shuffled, so any prefix is also a fair draw.
* ``without_replacement``: Gumbel-top-k (``argtopk(log_w + Gumbel)``), what the published MaGNET/Polarity code does.
  Each latent appears at most once, so heavy latents are capped at one copy: biased when ``n`` is a large share of the
  pool, and kept for compatibility and for diversity.
* ``rejection``: accept pool entry ``i`` with probability ``exp(log_w_i - log_bound)``: the accepted latents are exact
  i.i.d. draws from the target when ``log_bound`` is a true bound. Without one, the pool's maximum is used, which is
  exact for the pool's empirical target and an estimate for the continuous one. :func:`rejection_sample` also reports
  the acceptance rate.

Random numbers are drawn on the CPU from ``torch.Generator().manual_seed(seed)``, so the same seed gives the same
indices on every device; indices are returned on the device of ``log_weights``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from gendebias.errors import DegenerateWeightsError, InvalidArgumentError
from gendebias.geometry._inputs import check_choice, check_seed

Scheme = Literal["multinomial", "systematic", "without_replacement", "rejection"]


@dataclass(frozen=True)
class Rejection:
    """Result of :func:`rejection_sample`: ``indices`` ``(n,)`` int64 in pool order, the measured
    ``acceptance_rate`` over the whole pool, the ``log_bound`` used and whether it was ``bound_estimated``."""

    indices: Tensor
    acceptance_rate: float
    log_bound: float
    bound_estimated: bool


def resample(log_weights: Tensor, n: int, *, scheme: Scheme = "multinomial", seed: int | None = None) -> Tensor:
    """``n`` indices into the pool of ``log_weights`` (``(N,)``), drawn by ``scheme``; ``(n,)`` int64."""
    check_choice("scheme", scheme, SCHEMES)
    log_weights = _check_pool(log_weights)
    _check_count(n)
    return SCHEMES[scheme](log_weights, n, _random(seed)).to(log_weights.device)


def rejection_sample(log_weights: Tensor, n: int, *, log_bound: float | None = None,
                     seed: int | None = None) -> Rejection:
    """Rejection sampling from a pool of i.i.d. proposals: exact target draws given a valid ``log_bound``.

    Args:
        log_weights: ``(N,)`` log weights, target/proposal up to one constant shared with ``log_bound``.
        n: accepted latents wanted; a pool that yields fewer raises with the size it would need.
        log_bound: upper bound on ``log_weights``; None estimates it by the pool maximum.
        seed: seeds the uniforms; same seed, same answer.
    """
    log_weights = _check_pool(log_weights)
    _check_count(n)
    return _rejection(log_weights, n, _random(seed), log_bound)


def _multinomial(log_weights: Tensor, n: int, random: torch.Generator) -> Tensor:
    return _inverse_cdf(log_weights, torch.rand(n, dtype=torch.float64, generator=random))


def _systematic(log_weights: Tensor, n: int, random: torch.Generator) -> Tensor:
    order = torch.randperm(log_weights.shape[0], generator=random)
    offset = torch.rand(1, dtype=torch.float64, generator=random)
    points = (torch.arange(n, dtype=torch.float64) + offset) / n
    indices = order[_inverse_cdf(log_weights.cpu()[order], points)]
    return indices[torch.randperm(n, generator=random)]


def _without_replacement(log_weights: Tensor, n: int, random: torch.Generator) -> Tensor:
    support = int(torch.isfinite(log_weights).sum())
    if n > support:
        raise InvalidArgumentError(
            f"without_replacement cannot draw n={n} distinct latents from a pool with {support} of positive weight; "
            "use a larger pool or scheme='multinomial'"
        )
    uniforms = torch.rand(log_weights.shape[0], dtype=torch.float64, generator=random)
    gumbel = -torch.log(-torch.log(uniforms.clamp_min(torch.finfo(torch.float64).tiny)))
    return torch.topk(log_weights.cpu() + gumbel, n).indices


def _rejection_indices(log_weights: Tensor, n: int, random: torch.Generator) -> Tensor:
    return _rejection(log_weights, n, random, None).indices


def _rejection(log_weights: Tensor, n: int, random: torch.Generator, log_bound: float | None) -> Rejection:
    log_weights = log_weights.cpu()
    largest = float(log_weights.max())
    if log_bound is None:
        bound, estimated = largest, True
    elif largest > log_bound:
        raise InvalidArgumentError(f"log_bound={log_bound} is not a bound: the largest log weight is {largest}")
    else:
        bound, estimated = float(log_bound), False
    uniforms = torch.rand(log_weights.shape[0], dtype=torch.float64, generator=random)
    accepted = (uniforms.log() < log_weights - bound).nonzero().flatten()
    rate = accepted.shape[0] / log_weights.shape[0]
    if accepted.shape[0] < n:
        needed = "an unbounded number of" if rate == 0 else f"about {int(n / rate * 1.1) + 1}"
        raise InvalidArgumentError(
            f"rejection sampling accepted {accepted.shape[0]} of {log_weights.shape[0]} proposals "
            f"(acceptance rate {rate:.3g}) but n={n} were asked for; pass {needed} proposals"
        )
    return Rejection(accepted[:n], rate, bound, estimated)


SCHEMES: dict[str, Callable[[Tensor, int, torch.Generator], Tensor]] = {
    "multinomial": _multinomial,
    "systematic": _systematic,
    "without_replacement": _without_replacement,
    "rejection": _rejection_indices,
}


def _inverse_cdf(log_weights: Tensor, points: Tensor) -> Tensor:
    """Indices ``i`` with ``cdf[i-1] <= point * total < cdf[i]``, over the entries of positive weight only."""
    log_weights = log_weights.cpu()
    support = torch.isfinite(log_weights).nonzero().flatten()
    weights = torch.exp(log_weights[support] - log_weights[support].max())
    cdf = torch.cumsum(weights, dim=0)
    positions = torch.searchsorted(cdf, points * cdf[-1], right=True).clamp_max(support.shape[0] - 1)
    return support[positions]


def _check_pool(log_weights: Tensor) -> Tensor:
    if not isinstance(log_weights, Tensor) or log_weights.ndim != 1 or log_weights.shape[0] == 0:
        raise InvalidArgumentError(
            f"log_weights must be a non-empty 1-D tensor (N,), got {getattr(log_weights, 'shape', type(log_weights))}"
        )
    log_weights = log_weights.to(torch.float64)
    if bool((torch.isnan(log_weights) | torch.isposinf(log_weights)).any()):
        raise InvalidArgumentError("log_weights must be finite or -inf (no NaN, no +inf)")
    if not bool(torch.isfinite(log_weights).any()):
        raise DegenerateWeightsError("every log weight is -inf: no latent in the pool can be drawn")
    return log_weights


def _check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InvalidArgumentError(f"n must be a non-negative int, got {n!r}")


def _random(seed: int | None) -> torch.Generator:
    random = torch.Generator()
    if seed is None:
        random.seed()
        return random
    return random.manual_seed(check_seed(seed))
