"""The ridge surrogate of the log-volume: exact on a linear log-volume, honest about its error on noise."""

import math

import pytest
import torch

from gendebias.geometry.surrogate import FEWEST_POINTS, fitted_surrogate


def test_a_linear_log_volume_is_recovered_with_a_small_leave_one_out_error():
    random = torch.Generator().manual_seed(0)
    latents = torch.randn(300, 5, generator=random, dtype=torch.float64)
    weights = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0], dtype=torch.float64)
    surrogate = fitted_surrogate(latents, latents @ weights + 7.0)
    assert surrogate is not None
    assert torch.allclose(surrogate.weights, weights, atol=0.05)
    fresh = torch.randn(50, 5, generator=random, dtype=torch.float64)
    assert torch.allclose(surrogate.log_volumes(fresh), fresh @ weights + 7.0, atol=0.2)
    assert surrogate.residual < 0.05


def test_the_leave_one_out_error_is_the_noise_a_surrogate_cannot_predict():
    random = torch.Generator().manual_seed(1)
    latents = torch.randn(400, 10, generator=random, dtype=torch.float64)
    noise = 2.0 * torch.randn(400, generator=random, dtype=torch.float64)
    surrogate = fitted_surrogate(latents, latents[:, 0] + noise)
    assert surrogate is not None
    assert surrogate.residual == pytest.approx(2.0, rel=0.1)


def test_copies_and_infinite_log_volumes_are_left_out_of_the_fit():
    random = torch.Generator().manual_seed(2)
    latents = torch.randn(FEWEST_POINTS - 1, 3, generator=random, dtype=torch.float64)
    values = latents.sum(dim=1)
    # resampled copies do not count as points, nor do rank-deficient latents
    copies = torch.cat([latents, latents, torch.randn(4, 3, generator=random, dtype=torch.float64)])
    assert fitted_surrogate(copies, torch.cat([values, values, torch.full((4,), -math.inf)])) is None
    more = torch.randn(20, 3, generator=random, dtype=torch.float64)
    surrogate = fitted_surrogate(torch.cat([more, more]), torch.cat([more.sum(dim=1), more.sum(dim=1)]))
    assert surrogate is not None and math.isfinite(surrogate.residual)
