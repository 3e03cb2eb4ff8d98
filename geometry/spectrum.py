"""Log-volumes from singular values, the rank tolerance, and the ``top_k`` check shared by every method."""

from __future__ import annotations

import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError


def log_volume_from_singular_values(sigma: Tensor, rtol: float) -> Tensor:
    """Sum of log singular values (descending, ``(N, k)``); ``-inf`` where ``sigma_k <= rtol * sigma_1``."""
    deficient = sigma[:, -1] <= rtol * sigma[:, 0]
    result = sigma.log().sum(dim=-1)
    return result.masked_fill(deficient, -torch.inf)


def rank_tolerance(latent_dim: int, dtype: torch.dtype) -> float:
    """Relative rank tolerance ``d * eps(dtype)``: singular values below ``rtol * sigma_max`` are rounding noise."""
    return latent_dim * torch.finfo(dtype).eps


def check_top_k(top_k: int | None, latent_dim: int, output_dim: int) -> None:
    if top_k is None:
        return
    limit = min(latent_dim, output_dim)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= limit:
        raise InvalidArgumentError(
            f"top_k must be an int in [1, {limit}] (min of latent and output dims), got {top_k!r}"
        )
