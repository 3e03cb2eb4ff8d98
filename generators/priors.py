"""Latent priors: how a generator's latents are drawn, and their log densities.

Each prior is a frozen dataclass with ``sample(n, latent_shape, *, seed, dtype, device)`` and
``log_prob(latents) -> (N,) float64`` (normalised densities, so ``log_weights(..., log_prior=...)`` and
``log_proposal`` can be mixed freely). Sampling draws on the CPU from ``torch.Generator().manual_seed(seed)`` and
moves the result, so a seed gives the same latents on every device.

* ``normal``: standard normal, the default of GANs and VAEs.
* ``uniform``: uniform on the box ``[low, high]^d`` (the ``uniform`` target needs a bounded region;
  ``docs/design.md#targets-and-rho``).
* ``truncated_normal``: standard normal per coordinate, truncated to ``[-bound, bound]`` (the "truncation trick").
* ``ball``: uniform in the ball of ``radius`` (the other bounded region of the ``uniform`` target).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gendebias.errors import GeneratorSpecError


def _random(seed: int | None) -> torch.Generator:
    random = torch.Generator()
    if seed is None:
        random.seed()
    else:
        random.manual_seed(seed)
    return random


@dataclass(frozen=True)
class StandardNormal:
    name = "normal"

    def sample(self, n: int, latent_shape: tuple[int, ...], *, seed: int | None = None,
               dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
        return torch.randn((n, *latent_shape), generator=_random(seed), dtype=torch.float64).to(device, dtype)

    def log_prob(self, latents: Tensor) -> Tensor:
        flat = latents.flatten(1).to(torch.float64)
        return -0.5 * (flat**2).sum(dim=1) - 0.5 * flat.shape[1] * math.log(2 * math.pi)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


@dataclass(frozen=True)
class UniformBox:
    low: float = -1.0
    high: float = 1.0
    name = "uniform"

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise GeneratorSpecError(f"uniform prior needs low < high, got low={self.low}, high={self.high}")

    def sample(self, n: int, latent_shape: tuple[int, ...], *, seed: int | None = None,
               dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
        unit = torch.rand((n, *latent_shape), generator=_random(seed), dtype=torch.float64)
        return (self.low + (self.high - self.low) * unit).to(device, dtype)

    def log_prob(self, latents: Tensor) -> Tensor:
        flat = latents.flatten(1).to(torch.float64)
        inside = ((flat >= self.low) & (flat <= self.high)).all(dim=1)
        density = -flat.shape[1] * math.log(self.high - self.low)
        return torch.where(inside, density, -math.inf)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class TruncatedNormal:
    bound: float = 2.0
    name = "truncated_normal"

    def __post_init__(self) -> None:
        if not self.bound > 0:
            raise GeneratorSpecError(f"truncated_normal prior needs bound > 0, got {self.bound}")

    def sample(self, n: int, latent_shape: tuple[int, ...], *, seed: int | None = None,
               dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
        """Inverse CDF: uniform on ``[Phi(-bound), Phi(bound)]`` mapped through ``Phi^-1`` (exact, no rejection)."""
        low = 0.5 * math.erfc(self.bound / math.sqrt(2))
        unit = torch.rand((n, *latent_shape), generator=_random(seed), dtype=torch.float64)
        latents = torch.special.ndtri(low + (1 - 2 * low) * unit).clamp(-self.bound, self.bound)
        return latents.to(device, dtype)

    def log_prob(self, latents: Tensor) -> Tensor:
        flat = latents.flatten(1).to(torch.float64)
        inside = (flat.abs() <= self.bound).all(dim=1)
        mass = math.erf(self.bound / math.sqrt(2))
        per_coordinate = -0.5 * math.log(2 * math.pi) - math.log(mass)
        density = -0.5 * (flat**2).sum(dim=1) + flat.shape[1] * per_coordinate
        return torch.where(inside, density, -math.inf)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "bound": self.bound}


@dataclass(frozen=True)
class UniformBall:
    radius: float = 1.0
    name = "ball"

    def __post_init__(self) -> None:
        if not self.radius > 0:
            raise GeneratorSpecError(f"ball prior needs radius > 0, got {self.radius}")

    def sample(self, n: int, latent_shape: tuple[int, ...], *, seed: int | None = None,
               dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
        """A uniform direction times ``radius * U^(1/d)``: exactly uniform in the ball."""
        random = _random(seed)
        dimension = math.prod(latent_shape)
        direction = torch.randn((n, dimension), generator=random, dtype=torch.float64)
        direction = direction / direction.norm(dim=1, keepdim=True)
        radius = self.radius * torch.rand((n, 1), generator=random, dtype=torch.float64) ** (1 / dimension)
        return (direction * radius).reshape(n, *latent_shape).to(device, dtype)

    def log_prob(self, latents: Tensor) -> Tensor:
        flat = latents.flatten(1).to(torch.float64)
        dimension = flat.shape[1]
        log_volume = (dimension / 2) * math.log(math.pi) + dimension * math.log(self.radius) \
            - math.lgamma(dimension / 2 + 1)
        return torch.where(flat.norm(dim=1) <= self.radius, -log_volume, -math.inf)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "radius": self.radius}


Prior = StandardNormal | UniformBox | TruncatedNormal | UniformBall
PRIORS: dict[str, type[StandardNormal] | type[UniformBox] | type[TruncatedNormal] | type[UniformBall]] = {
    "normal": StandardNormal, "uniform": UniformBox, "truncated_normal": TruncatedNormal, "ball": UniformBall,
}


def make_prior(spec: str | Mapping[str, Any] | Prior | None) -> Prior:
    """A prior from ``"normal"``, ``{"name": "uniform", "low": -1, "high": 1}``, a prior object, or None (normal)."""
    if spec is None:
        return StandardNormal()
    if isinstance(spec, (StandardNormal, UniformBox, TruncatedNormal, UniformBall)):
        return spec
    options = dict(spec) if isinstance(spec, Mapping) else {"name": spec}
    name = options.pop("name", None)
    if name not in PRIORS:
        raise GeneratorSpecError(f"unknown prior {name!r}; choose one of {list(PRIORS)}")
    try:
        return PRIORS[name](**options)
    except TypeError as error:
        raise GeneratorSpecError(f"bad options for prior {name!r}: {error}") from None
