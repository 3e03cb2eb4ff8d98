"""Metropolis–Hastings moves in latent space that leave a tempered debiasing target invariant.

Tempered target (DESIGN.md §1 with an inverse temperature ``beta`` in [0, 1]):

    pi_beta(z) ∝ base(z) * exp(beta * rho * log_volume(z))

with ``base`` the latent prior (target ``tilted``) or the uniform density on the prior's bounded support (target
``uniform``). On a piecewise-affine generator ``log_volume`` is constant on tiles, so its gradient is zero almost
everywhere: the moves are gradient-free.

* Gaussian prior, ``tilted``: preconditioned Crank–Nicolson, ``z' = sqrt(1 - s^2) z + s xi``, which is reversible
  for ``N(0, I)``, so the acceptance ratio is the tilt alone, ``exp(beta rho (lv' - lv))``, and the move does not
  degrade with the latent dimension (Cotter, Roberts, Stuart & White, Statistical Science 2013).
* Otherwise: random-walk Metropolis, ``z' = z + s xi``, accepted with ``base(z') / base(z) * exp(beta rho (lv'-lv))``;
  a proposal outside the support has ``base = 0`` and is rejected.

Step sizes are adapted between sweeps towards an acceptance rate of 0.3 (never within one, so each sweep is a valid
MH kernel).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError
from gendebias.geometry.volume import log_volume

TARGET_ACCEPTANCE = 0.3


@dataclass
class TemperedTarget:
    """A generator with a prior (``sample_latents``, ``log_prior``, ``prior.name``), ``rho``, the target and
    ``top_k``; counts log-volume evaluations and enforces the budget."""

    generator: Any
    rho: float
    target: Literal["tilted", "uniform"]
    top_k: int | None = None
    max_evaluations: int | None = None
    deadline: float | None = None  # time.monotonic() value
    chunk_size: int | None = None
    evaluations: int = 0
    gaussian: bool = field(init=False)

    def __post_init__(self) -> None:
        for attribute in ("sample_latents", "log_prior", "prior"):
            if not hasattr(self.generator, attribute):
                raise InvalidArgumentError(
                    f"the samplers need a Generator with a prior (sample_latents, log_prior); got "
                    f"{type(self.generator).__name__}. Wrap the module: Generator(module, latent_shape=...)")
        prior = getattr(self.generator.prior, "name", "")
        if self.target == "uniform" and prior not in ("uniform", "ball"):
            raise InvalidArgumentError(f"target='uniform' needs a bounded uniform prior ('uniform' box or 'ball'), "
                                       f"this generator's prior is {prior!r}")
        self.gaussian = prior == "normal" and self.target == "tilted"

    def affordable(self, count: int) -> str | None:
        """None if ``count`` more evaluations fit the budget, else the reason to stop."""
        if self.max_evaluations is not None and self.evaluations + count > self.max_evaluations:
            return "max_evaluations"
        if self.deadline is not None and time.monotonic() > self.deadline:
            return "deadline"
        return None

    def log_volumes(self, latents: Tensor) -> Tensor:
        self.evaluations += latents.shape[0]
        return log_volume(self.generator, latents, top_k=self.top_k, chunk_size=self.chunk_size)

    def log_base(self, latents: Tensor) -> Tensor:
        """``log base(z)`` up to a constant: the prior (tilted) or 0 on the support (uniform)."""
        log_prior = self.generator.log_prior(latents).to(torch.float64)
        return torch.where(torch.isfinite(log_prior), 0.0, -math.inf) if self.target == "uniform" else log_prior

    def tilt(self, beta: float, log_volumes: Tensor) -> Tensor:
        """``beta * rho * log_volume`` with ``0 * -inf = 0``."""
        scale = beta * self.rho
        return torch.zeros_like(log_volumes) if scale == 0 else scale * log_volumes


@dataclass
class Particles:
    """Latents with their cached log-volumes and log base densities."""

    latents: Tensor
    log_volumes: Tensor
    log_base: Tensor

    def take(self, indices: Tensor) -> Particles:
        return Particles(self.latents[indices], self.log_volumes[indices], self.log_base[indices])


def initial_step(target: TemperedTarget, latents: Tensor) -> float:
    """pCN: ``min(0.5, 2.38 / sqrt(d))``; random walk: ``2.38 / sqrt(d)`` times the particles' mean spread."""
    dimension = latents[0].numel()
    if target.gaussian:
        return min(0.5, 2.38 / math.sqrt(dimension))
    spread = float(latents.flatten(1).to(torch.float64).std(dim=0).mean()) if latents.shape[0] > 1 else 1.0
    return 2.38 / math.sqrt(dimension) * max(spread, 1e-6)


def metropolis_sweep(target: TemperedTarget, particles: Particles, beta: float, step: float,
                     random: torch.Generator) -> tuple[Particles, Tensor]:
    """One MH move of every particle; returns the new particles and the ``(N,)`` accepted mask."""
    latents = particles.latents
    noise = torch.randn(latents.shape, generator=random, dtype=torch.float64).to(latents)
    shrink = math.sqrt(1 - step**2) if target.gaussian else 1.0  # pCN keeps N(0, I); a random walk does not shrink
    proposal = shrink * latents + step * noise
    log_base = target.log_base(proposal)
    log_volumes = target.log_volumes(proposal)
    log_ratio = target.tilt(beta, log_volumes) - target.tilt(beta, particles.log_volumes)
    if not target.gaussian:
        log_ratio = log_ratio + log_base - particles.log_base
    log_ratio = torch.nan_to_num(log_ratio, nan=-math.inf)
    uniforms = torch.rand(latents.shape[0], generator=random, dtype=torch.float64)
    accepted = (uniforms.log() < log_ratio.cpu()).to(latents.device)
    keep = accepted.reshape(-1, *([1] * (latents.ndim - 1)))
    moved = Particles(torch.where(keep, proposal, latents), torch.where(accepted, log_volumes, particles.log_volumes),
                      torch.where(accepted, log_base, particles.log_base))
    return moved, accepted


def adapted_step(target: TemperedTarget, step: float, acceptance: float) -> float:
    """Robbins–Monro step towards :data:`TARGET_ACCEPTANCE`; pCN steps stay in (0, 0.99]."""
    step *= math.exp(acceptance - TARGET_ACCEPTANCE)
    return min(step, 0.99) if target.gaussian else step
