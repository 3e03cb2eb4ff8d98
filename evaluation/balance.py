"""Class or attribute balance of generated samples, from a classifier's labels or probabilities.

Naive sampling of a generator need not cover classes in the proportions one wants, and a debiased sample is not
balanced by construction (uniform on the manifold is not uniform over classes): these functions measure it.

* :func:`class_distribution`: the generated class distribution ``p`` ``(K,)``: with labels ``c_i``,
  ``p_k = sum_i w_i 1[c_i = k] / sum_i w_i``; with probabilities ``q_ik`` (rows of a classifier's softmax),
  ``p_k = sum_i w_i q_ik / sum_i w_i``. Unweighted: ``w_i = 1``. **Weighted**: ``w_i >= 0`` are importance weights
  of the samples (any scale, not logs), used instead of resampled draws; uniform weights give the unweighted
  distribution and integer weights that of the set in which sample ``i`` appears ``w_i`` times.
* Against a target ``t`` (uniform ``1/K`` by default, or any distribution over the ``K`` classes):
  :func:`kl_divergence` ``KL(p || t) = sum_k p_k log(p_k / t_k)`` in nats (``0 log 0 = 0``; infinite where
  ``t_k = 0 < p_k``), :func:`total_variation` ``TV = 1/2 sum_k |p_k - t_k|`` in ``[0, 1]``, and
  :func:`fairness_discrepancy` ``||p - t||_2``, the "fairness discrepancy" of Choi, Grover, Singh, Shu and Ermon,
  "Fair Generative Modeling via Weak Supervision", ICML 2020 (arXiv:1910.12008), where ``p`` averages the attribute
  classifier's one-hot predictions: pass labels to reproduce it, probabilities to average soft predictions instead.

Each takes counts or shares (normalised here); :func:`balance` returns all of them at once.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError
from gendebias.evaluation._inputs import check_positive_int, check_vector, check_weights


class Balance(NamedTuple):
    """The class distribution of a sample and its distances to a target distribution."""

    shares: Tensor
    """``(K,)`` float64 class distribution ``p``."""
    kl_divergence: float
    """``KL(p || target)`` in nats."""
    total_variation: float
    """``1/2 sum_k |p_k - target_k|``."""
    fairness_discrepancy: float
    """``||p - target||_2`` (Choi et al. 2020)."""


def class_distribution(values: Any, *, classes: int | None = None, weights: Any = None) -> Tensor:
    """The (weighted) class distribution ``p`` of a sample (module docstring).

    Args:
        values: ``(N,)`` integer labels in ``0..classes-1``, or ``(N, K)`` class probabilities (non-negative rows
            summing to 1, e.g. a classifier's softmax); tensor or array.
        classes: number of classes ``K``; required with labels (a class no sample has must still count), checked
            against ``K`` with probabilities.
        weights: ``(N,)`` non-negative importance weights of the samples, or None.

    Returns:
        ``(K,)`` float64 shares summing to 1.
    """
    values = torch.from_numpy(np.asarray(values)) if not isinstance(values, Tensor) else values
    weights = torch.ones(values.shape[0], dtype=torch.float64) if weights is None else check_weights(
        weights, values.shape[0])
    if values.ndim == 1 and not values.is_floating_point():
        if classes is None:
            raise InvalidArgumentError("labels need classes=K: a class that no sample has must still count")
        classes = check_positive_int(classes, "classes")
        if values.numel() and (int(values.min()) < 0 or int(values.max()) >= classes):
            raise InvalidArgumentError(
                f"labels must lie in 0..{classes - 1}, got {int(values.min())}..{int(values.max())}"
            )
        counts = torch.bincount(values.long(), weights=weights, minlength=classes)
    elif values.ndim == 2 and values.is_floating_point():
        probabilities = values.to(torch.float64)
        if classes is not None and classes != probabilities.shape[1]:
            raise InvalidArgumentError(f"classes={classes} but the probabilities have {probabilities.shape[1]} columns")
        if bool((probabilities < 0).any()) or not torch.allclose(probabilities.sum(dim=1), torch.ones(()).double(),
                                                                  atol=1e-6):
            raise InvalidArgumentError("probabilities must be non-negative rows summing to 1; apply softmax to logits")
        counts = weights @ probabilities
    else:
        raise InvalidArgumentError(
            f"values must be (N,) integer labels or (N, K) floating probabilities, got shape {tuple(values.shape)} "
            f"and dtype {values.dtype}"
        )
    return counts / counts.sum()


def kl_divergence(shares: Any, target: Any = None) -> float:
    """``KL(p || t) = sum_k p_k log(p_k / t_k)`` in nats for counts or shares ``p`` ``(K,)`` and a target ``t``
    (uniform if None): 0 when ``p = t``, ``log K`` for one class against uniform, ``inf`` where ``t_k = 0 < p_k``."""
    shares, target = _distributions(shares, target)
    present = shares > 0
    if bool((target[present] == 0).any()):
        return math.inf
    return float((shares[present] * torch.log(shares[present] / target[present])).sum())


def total_variation(shares: Any, target: Any = None) -> float:
    """``TV(p, t) = 1/2 sum_k |p_k - t_k|`` in ``[0, 1]`` for counts or shares ``p`` and a target (uniform if None):
    the largest difference in probability the two give any set of classes."""
    shares, target = _distributions(shares, target)
    return float((shares - target).abs().sum() / 2)


def fairness_discrepancy(shares: Any, target: Any = None) -> float:
    """``||p - t||_2`` (Choi et al. 2020) for counts or shares ``p`` and a target (uniform if None): 0 when
    balanced, ``sqrt((K - 1) / K)`` for one class against uniform."""
    shares, target = _distributions(shares, target)
    return float(torch.linalg.vector_norm(shares - target))


def balance(values: Any, *, classes: int | None = None, weights: Any = None, target: Any = None) -> Balance:
    """:func:`class_distribution` of ``values`` and its KL divergence, total variation and fairness discrepancy to
    ``target`` (uniform over the classes if None); arguments as there."""
    shares = class_distribution(values, classes=classes, weights=weights)
    return Balance(shares, kl_divergence(shares, target), total_variation(shares, target),
                   fairness_discrepancy(shares, target))


def _distributions(shares: Any, target: Any) -> tuple[Tensor, Tensor]:
    """``(p, t)`` as ``(K,)`` float64 distributions; ``t`` uniform when None."""
    shares = _normalised(shares, "shares")
    if target is None:
        return shares, torch.full_like(shares, 1.0 / shares.numel())
    target = _normalised(target, "target")
    if target.shape != shares.shape:
        raise InvalidArgumentError(f"target has {target.numel()} classes but the shares have {shares.numel()}")
    return shares, target


def _normalised(values: Any, name: str) -> Tensor:
    values = check_vector(values, name)
    if values.numel() == 0 or float(values.sum()) <= 0:
        raise InvalidArgumentError(f"{name} must hold counts or shares with a positive sum")
    return values / values.sum()
