"""The one place where evaluation checks its inputs: feature sets, importance weights, seeds and chunk sizes.

Every public metric calls these first, so a bad call fails early with a message that says how to fix it. Feature
sets are ``(N, F)`` torch tensors or numpy arrays; floating inputs keep their dtype (float32 stays float32, so a
50,000-point set is not copied to float64), integer inputs become float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from gendebias.errors import DegenerateWeightsError, InvalidArgumentError

FeaturesLike = Tensor | np.ndarray
"""A ``(N, F)`` torch tensor or numpy array of features, one row per sample."""

MASS_TOLERANCE = 1e-9
"""Relative allowance for rounding when a sum of expected counts is compared with a whole number of points."""


def check_features(values: Any, name: str) -> Tensor:
    """``values`` as a finite floating ``(N, F)`` tensor (numpy arrays are wrapped, not copied)."""
    if isinstance(values, np.ndarray):
        values = torch.from_numpy(np.ascontiguousarray(values))
    if not isinstance(values, Tensor):
        raise InvalidArgumentError(f"{name} must be a (N, F) torch.Tensor or numpy array, got {type(values).__name__}")
    if values.ndim != 2:
        raise InvalidArgumentError(
            f"{name} must have shape (N, F), one row of features per sample, got {tuple(values.shape)}; "
            "flatten images with features.reshape(len(features), -1) or use gendebias.evaluation.extract_features"
        )
    if not values.is_floating_point():
        values = values.to(torch.float64)
    bad = ~torch.isfinite(values).all(dim=1)
    if bool(bad.any()):
        rows = bad.nonzero().flatten()[:10].tolist()
        raise InvalidArgumentError(f"{name} has NaN or infinite values in {int(bad.sum())} rows (first: {rows})")
    return values


def check_pair(real: Any, generated: Any, *, real_minimum: int = 1,
               generated_minimum: int = 1) -> tuple[Tensor, Tensor]:
    """``(real, generated)`` as ``(N, F)`` and ``(M, F)`` tensors of one floating dtype (the promoted one), with
    ``N >= real_minimum`` and ``M >= generated_minimum``."""
    real = check_features(real, "real")
    generated = check_features(generated, "generated")
    if real.shape[1] != generated.shape[1]:
        raise InvalidArgumentError(
            f"real has {real.shape[1]} features per sample but generated has {generated.shape[1]}; "
            "extract both with the same feature extractor"
        )
    for name, values, minimum in (("real", real, real_minimum), ("generated", generated, generated_minimum)):
        if values.shape[0] < minimum:
            raise InvalidArgumentError(f"{name} has {values.shape[0]} samples; this metric needs at least {minimum}")
    dtype = torch.promote_types(real.dtype, generated.dtype)
    return real.to(dtype), generated.to(device=real.device, dtype=dtype)


def check_vector(values: Any, name: str, *, non_negative: bool = True) -> Tensor:
    """``values`` (tensor, array or list) as a finite 1-D float64 tensor, non-negative unless told otherwise."""
    values = (values if isinstance(values, Tensor) else torch.from_numpy(np.asarray(values))).to(torch.float64)
    if values.ndim != 1:
        raise InvalidArgumentError(f"{name} must be 1-D, got shape {tuple(values.shape)}")
    if not bool(torch.isfinite(values).all()) or (non_negative and bool((values < 0).any())):
        raise InvalidArgumentError(f"{name} must be finite{' and non-negative' if non_negative else ''}")
    return values


def check_weights(weights: Any, count: int) -> Tensor:
    """Importance weights of ``count`` generated samples as a ``(count,)`` float64 tensor scaled so the largest is
    exactly 1 (no metric depends on the scale; this way sums cannot overflow and constant weights become exact
    ones). They must be finite, non-negative, not all zero; they need not be normalised. Log weights are not
    accepted here: pass ``log_weights.exp()`` of :func:`gendebias.geometry.log_weights` (normalised, so it cannot
    overflow)."""
    if not isinstance(weights, Tensor):
        weights = torch.from_numpy(np.array(weights, dtype=np.float64))
    if weights.ndim != 1 or weights.shape[0] != count:
        shape = tuple(weights.shape)
        raise InvalidArgumentError(f"weights must have shape ({count},), one per generated sample, got {shape}")
    weights = weights.to(torch.float64)
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise InvalidArgumentError(
            "weights must be finite and non-negative (importance weights, not log weights); "
            "pass log_weights.exp() for normalised log weights"
        )
    largest = weights.max()
    if float(largest) <= 0:
        raise DegenerateWeightsError("every weight is zero; at least one generated sample needs positive weight")
    return weights / largest


def expected_counts(weights: Any, count: int) -> Tensor:
    """``(count,)`` float64 ``w~_i = count * w_i / sum_l w_l``: how often sample ``i`` is expected in a resample of
    ``count`` draws from the weighted pool. ``weights=None`` gives exact ones."""
    if weights is None:
        return torch.ones(count, dtype=torch.float64)
    weights = check_weights(weights, count)
    return weights * (count / weights.sum())


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """``value`` if it is an int ``>= minimum`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_seed(seed: Any) -> int:
    """``seed`` if it is an int in ``[0, 2**63)`` (what ``torch.Generator().manual_seed`` takes)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InvalidArgumentError(f"seed must be an int in [0, 2**63), got {seed!r}")
    return seed
