"""Analytic toy generators with known answers, for tests and the demo.

``Ramp``: ``G(z) = (z1, z2, a * relu(z1 - c))`` on the box ``[-1, 1]^2``. It is flat (``log_volume = 0``) for
``z1 <= c`` and tilted (``log_volume = 1/2 log(1 + a^2)``) for ``z1 > c``, so the surface area over ``z1 > c`` is
``(1 - c) * 2 * sqrt(1 + a^2)`` against ``(1 + c) * 2`` for the rest: naive uniform latents put a share
``(1 - c) / 2`` of outputs on the ramp, area-uniform sampling puts
``(1 - c) sqrt(1 + a^2) / ((1 - c) sqrt(1 + a^2) + (1 + c))`` there.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Ramp(nn.Module):
    """``(N, 2) -> (N, 3)``: ``(z1, z2, slope * relu(z1 - kink))``."""

    latent_dim = 2

    def __init__(self, *, slope: float = 3.0, kink: float = 0.0) -> None:
        super().__init__()
        self.slope = slope
        self.kink = kink

    def forward(self, latents: Tensor) -> Tensor:
        height = self.slope * torch.relu(latents[:, :1] - self.kink)
        return torch.cat([latents, height], dim=1)

    def ramp_area_share(self) -> float:
        """Exact share of the surface area (over the box ``[-1, 1]^2``) that lies on the ramp ``z1 > kink``."""
        tilted = (1 - self.kink) * math.sqrt(1 + self.slope**2)
        return tilted / (tilted + (1 + self.kink))

    def ramp_log_volume(self) -> float:
        """``log_volume`` on the ramp: ``1/2 log(1 + slope^2)`` (0 elsewhere)."""
        return 0.5 * math.log1p(self.slope**2)
