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


class Parabola(nn.Module):
    """``(N, 1) -> (N, 2)``: the smooth curve ``t -> (t, curvature * t^2)`` on ``[-1, 1]``.

    ``log_volume(t) = 1/2 log(1 + (2 curvature t)^2)`` (the speed ``|G'(t)|``), and the arc length from ``-1`` to
    ``t`` has the closed form of :meth:`arc_length`, so area-uniform sampling on the curve has an exact CDF.
    """

    latent_dim = 1

    def __init__(self, *, curvature: float = 2.0) -> None:
        super().__init__()
        self.curvature = curvature

    def forward(self, latents: Tensor) -> Tensor:
        return torch.cat([latents, self.curvature * latents**2], dim=1)

    def arc_length(self, t: float) -> float:
        """Length of the curve from ``-1`` to ``t``: ``F(t) - F(-1)`` with ``F(u) = (u s + asinh(2 c u) / (2 c)) / 2``,
        ``s = sqrt(1 + (2 c u)^2)``."""

        def primitive(u: float) -> float:
            slope = 2 * self.curvature * u
            return 0.5 * (u * math.sqrt(1 + slope**2) + math.asinh(slope) / (2 * self.curvature))

        return primitive(t) - primitive(-1.0)


class Tent(nn.Module):
    """``(N, 2) -> (N, 3)``: the piecewise-linear surface ``(z1, z2, a |z1| + b relu(z2 - c))`` on ``[-1, 1]^2``.

    Four tiles (signs of ``z1`` and ``z2 - c``), each with constant ``log_volume``:
    ``1/2 log(1 + a^2 + b^2 [z2 > c])``; :meth:`tile_area_shares` gives their exact shares of the surface area.
    """

    latent_dim = 2

    def __init__(self, *, slope: float = 2.0, step: float = 3.0, kink: float = 0.5) -> None:
        super().__init__()
        self.slope = slope
        self.step = step
        self.kink = kink

    def forward(self, latents: Tensor) -> Tensor:
        height = self.slope * latents[:, :1].abs() + self.step * torch.relu(latents[:, 1:] - self.kink)
        return torch.cat([latents, height], dim=1)

    def tile_area_shares(self) -> dict[tuple[bool, bool], float]:
        """Exact area share of each tile keyed by ``(z1 > 0, z2 > kink)``."""
        areas = {}
        for right in (False, True):
            for upper in (False, True):
                latent_area = 1.0 * ((1 - self.kink) if upper else (1 + self.kink))
                stretch = math.sqrt(1 + self.slope**2 + (self.step**2 if upper else 0.0))
                areas[(right, upper)] = latent_area * stretch
        total = sum(areas.values())
        return {tile: area / total for tile, area in areas.items()}
