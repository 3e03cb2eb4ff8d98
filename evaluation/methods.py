"""The sampling methods a results table compares, and how each draws its latents.

* ``naive``: prior draws ``z ~ p(z)`` (``rho = 0``), the baseline every other row is compared with.
* ``truncation:PSI``: the truncation trick (Brock, Donahue and Simonyan, "Large Scale GAN Training for High Fidelity
  Natural Image Synthesis", ICLR 2019, arXiv:1809.11096, §3.1; Karras, Laine and Aila, "A Style-Based Generator
  Architecture for Generative Adversarial Networks", CVPR 2019, arXiv:1812.04948, §2.1) in its scaling form:
  ``z' = mu + psi (z - mu)`` with ``z ~ p(z)`` and ``mu`` the prior's mean, so ``psi = 1`` is naive and smaller
  ``psi`` pulls every latent toward the mean (quality up, diversity down). The default table uses ``psi = 0.7``
  and ``psi = 0.5``.
* ``magnet``: MaGNET (Humayun, Balestriero and Baraniuk, "MaGNET: Uniform Sampling from Deep Generative Network
  Manifolds Without Retraining", ICLR 2022, arXiv:2110.08009) as its code computes it: target ``tilted`` with
  ``rho = 1``, ``pi(z) ∝ p(z) vol(z)``.
* ``magnet-uniform``: MaGNET's stated goal, target ``uniform`` with ``rho = 1``: outputs uniform with respect to
  area on the image of a bounded latent region. For a standard normal prior the region is the ball holding 99% of
  the prior's mass (radius ``sqrt(chi2_d^-1(0.99))``, :func:`bounded_view`); a bounded prior is used as it is.
* ``polarity:RHO``: Polarity Sampling (Humayun, Balestriero and Baraniuk, "Polarity Sampling: Quality and
  Diversity Control of Pre-Trained Generative Networks via Singular Values", CVPR 2022, arXiv:2203.01993): target
  ``tilted`` with ``rho`` in place of 1 (``rho < 0`` favours modes, ``rho > 0`` rare regions), all singular values
  (the published code keeps the top k only for generators too large for the full spectrum). The default table uses
  ``rho = -1, -0.5, +0.5``.
* ``balanced`` (or ``balanced:RHO``): target ``balanced``, classes balanced by the generator's classifier and each
  class volume-uniform (``rho = 1`` by default).
* ``tilted:RHO``, ``uniform:RHO``: any other exponent.

Every debiasing method draws with :func:`gendebias.geometry.sample` (``sampler="auto"``); its ESS, distinct count,
evaluations, tempered ``beta`` and warnings are kept. Prior draws and truncated draws are independent: their ESS is
``n``, and they cost no log-volume evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError
from gendebias.generators import Generator
from gendebias.generators.priors import StandardNormal, TruncatedNormal, UniformBall, UniformBox
from gendebias.geometry import sample
from gendebias.geometry.kernels import LogVolumeFunction

Kind = Literal["naive", "truncation", "sample"]

BALL_MASS = 0.99
"""Share of a standard normal prior's mass inside the ball that bounds the ``uniform`` target's region."""


@dataclass(frozen=True)
class Method:
    """One row of a results table: ``name`` as written on the command line, how it draws (``kind``), its
    ``target`` and ``rho`` (``sample``), or ``psi`` (``truncation``)."""

    name: str
    kind: Kind
    target: str = "tilted"
    rho: float = 0.0
    psi: float | None = None

    @property
    def label(self) -> str:
        """``rho = 1`` or ``psi = 0.7``: the knob, for tables and pictures."""
        if self.kind == "truncation":
            return f"psi = {self.psi:g}"
        return f"rho = {self.rho:+g}" if self.rho else "rho = 0"


DEFAULT_METHODS = ("naive", "truncation:0.7", "truncation:0.5", "magnet", "magnet-uniform", "polarity:-1",
                   "polarity:-0.5", "polarity:0.5", "balanced")
"""The methods of ``gendebias evaluate`` and ``make results`` (module docstring)."""


def parse_method(text: str) -> Method:
    """A :class:`Method` from its name (module docstring lists the forms)."""
    name, _, value = text.strip().partition(":")
    fixed = {"naive": Method("naive", "naive"), "magnet": Method("magnet", "sample", "tilted", 1.0),
             "magnet-uniform": Method("magnet-uniform", "sample", "uniform", 1.0),
             "balanced": Method("balanced", "sample", "balanced", 1.0)}
    if name in fixed and not value:
        return fixed[name]
    targets = {"polarity": "tilted", "tilted": "tilted", "uniform": "uniform", "balanced": "balanced"}
    if (name not in targets and name != "truncation") or not value:
        raise InvalidArgumentError(
            f"unknown method {text!r}; use naive, magnet, magnet-uniform, balanced, truncation:PSI, polarity:RHO, "
            "tilted:RHO, uniform:RHO or balanced:RHO (e.g. polarity:-0.5)", field="methods")
    try:
        number = float(value)
    except ValueError:
        raise InvalidArgumentError(f"method {text!r}: {value!r} is not a number", field="methods") from None
    if not math.isfinite(number):
        raise InvalidArgumentError(f"method {text!r}: the number must be finite", field="methods")
    if name == "truncation":
        if not 0 < number <= 1:
            raise InvalidArgumentError(f"method {text!r}: psi must lie in (0, 1]", field="methods")
        return Method(f"truncation:{number:g}", "truncation", psi=number)
    return Method(f"{name}:{number:g}", "sample", targets[name], number)


def parse_methods(items: Sequence[str | Method]) -> list[Method]:
    """Methods from names (or :class:`Method` values), in order; ``naive`` is put first when missing (every row is
    compared with it)."""
    methods = [item if isinstance(item, Method) else parse_method(item) for item in items]
    names = [method.name for method in methods]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidArgumentError(f"methods {duplicates} are listed twice", field="methods")
    if "naive" not in names:
        methods.insert(0, parse_method("naive"))
    return methods


@dataclass(frozen=True)
class Draw:
    """The latents one method drew and what it took (independent prior draws: ``ess = n``, no evaluations)."""

    latents: Tensor
    ess: float
    distinct: int
    evaluations: int
    sampler: str
    beta: float
    warnings: tuple[str, ...]


def draw(generator: Generator, method: Method, n: int, *, seed: int, max_evaluations: int | None = None,
         log_volume_function: LogVolumeFunction | None = None) -> Draw:
    """``n`` latents of ``method`` (module docstring) drawn with ``seed``."""
    if method.kind != "sample":
        latents = generator.sample_latents(n, seed=seed)
        if method.kind == "truncation":
            assert method.psi is not None
            mean = prior_mean(generator).to(latents)
            latents = mean + method.psi * (latents - mean)
        return Draw(latents, float(n), distinct_count(latents), 0, method.kind, 1.0, ())
    source = bounded_view(generator) if method.target == "uniform" else generator
    result = sample(source, n, rho=method.rho, target=method.target,
                    seed=seed, max_evaluations=max_evaluations, log_volume_function=log_volume_function)
    return Draw(result.latents, result.ess, result.distinct, result.evaluations, result.sampler, result.beta,
                result.warnings)


def prior_mean(generator: Generator) -> Tensor:
    """The mean of the generator's prior, ``(*latent_shape)``: 0 for the normal, truncated normal and ball priors,
    the box's centre for the uniform one."""
    prior = generator.prior
    if isinstance(prior, StandardNormal | TruncatedNormal | UniformBall):
        return torch.zeros(generator.latent_shape, dtype=torch.float64)
    if isinstance(prior, UniformBox):
        return torch.full(generator.latent_shape, (prior.low + prior.high) / 2, dtype=torch.float64)
    raise InvalidArgumentError(f"the truncation trick needs the mean of the prior {prior!r}; it is known for the "
                               "normal, truncated normal, uniform and ball priors only")


def bounded_view(generator: Generator) -> Generator:
    """The generator itself when its prior is bounded (``uniform`` box or ``ball``); for a normal prior, a view of
    the same module whose prior is uniform in the ball holding :data:`BALL_MASS` of the normal's mass."""
    if isinstance(generator.prior, UniformBox | UniformBall):
        return generator
    if not isinstance(generator.prior, StandardNormal | TruncatedNormal):
        raise InvalidArgumentError(f"target 'uniform' needs a bounded region; none is known for {generator.prior!r}")
    from scipy.stats import chi2

    radius = math.sqrt(float(chi2.ppf(BALL_MASS, generator.latent_dim)))
    return Generator(generator.module, latent_shape=generator.latent_shape, prior=UniformBall(radius),
                     kind=generator.kind, classes=generator.classes, frozen_noise=generator.frozen_noise,
                     call_kwargs=generator.call_kwargs, name=f"{generator.name} (ball r = {radius:.3g})",
                     description=generator.description, label=generator.label, dtype=generator.dtype,
                     classifier=generator.classifier)


def distinct_count(latents: Tensor) -> int:
    """Distinct rows of ``latents`` ``(N, ...)``."""
    return int(torch.unique(latents.flatten(1), dim=0).shape[0]) if latents.shape[0] else 0
