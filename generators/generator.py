"""``Generator``: one object for every source (torch module, TorchScript, diffusers decoder, built-in zoo).

A ``Generator`` is an ``nn.Module`` that maps latents ``(N, *latent_shape)`` to outputs ``(N, *output_shape)`` and
carries what the geometry, the service and the jobs need to know about it (``docs/design.md#public-python-api``):
its latent shape and prior, its output shape, whether it is a GAN generator or a VAE decoder, whether it is
piecewise affine (detected, never assumed), its classes if it is conditional, and whether fixed noise inputs were
frozen.

A generator may carry a ``classifier``: a callable mapping its outputs to ``(N, C)`` class probabilities, which the
``balanced`` target of the samplers uses (:meth:`Generator.class_probabilities`).

Conditional generators take ``labels`` ``(N,)`` as a second argument; :meth:`Generator.condition` returns a view
with one class fixed, which is what the geometry differentiates (weights are then normalised per class, as Polarity
Sampling does for BigGAN).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gendebias.errors import GeneratorModeError, GeneratorSpecError, InvalidArgumentError
from gendebias.generators.priors import Prior, StandardNormal
from gendebias.geometry import nonlinearities

Kind = Literal["gan", "vae"]
KINDS = ("gan", "vae")


@dataclass(frozen=True)
class GeneratorInfo:
    """Metadata of a generator, as the service's ``GetGenerator`` reports it."""

    name: str
    kind: Kind
    latent_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    prior: dict[str, Any]
    piecewise_affine: bool
    smooth_operations: tuple[str, ...]
    classes: int | None
    label: int | None
    frozen_noise: bool
    dtype: str
    description: str


class Generator(nn.Module):
    """Wrap ``module`` (``(N, *latent_shape)[, labels (N,)] -> (N, ...)``) with its metadata.

    Args:
        module: the network; it is used as is (put it in eval mode first if it has batch norm or dropout).
        latent_shape: shape of one latent, e.g. ``(100,)`` or ``(4, 32, 32)``.
        prior: latent prior (default standard normal).
        kind: ``"gan"`` (generator) or ``"vae"`` (decoder).
        classes: number of classes of a conditional generator (module takes labels), else None.
        frozen_noise: the module's noise inputs were fixed (e.g. StyleGAN ``noise_mode="const"``); reported only.
        call_kwargs: extra keyword arguments passed on every call (how noise gets frozen, for instance).
        name, description: shown by ``list_generators``.
        classifier: optional callable mapping outputs ``(N, *output_shape)`` to ``(N, C)`` class probabilities
            (rows of a softmax); not a submodule: it is never differentiated, moved or trained with the generator.

    On construction the module runs twice on the same latent: outputs that differ mean unfrozen randomness and are
    refused, since a random map has no Jacobian.
    """

    classifier: Callable[[Tensor], Tensor] | None

    def __init__(self, module: nn.Module, *, latent_shape: tuple[int, ...] | list[int], prior: Prior | None = None,
                 kind: Kind = "gan", classes: int | None = None, frozen_noise: bool = False,
                 call_kwargs: dict[str, Any] | None = None, name: str = "generator", description: str = "",
                 label: int | None = None, dtype: torch.dtype | None = None,
                 classifier: Callable[[Tensor], Tensor] | None = None) -> None:
        super().__init__()
        if kind not in KINDS:
            raise GeneratorSpecError(f"unknown kind {kind!r}; choose one of {list(KINDS)}")
        shape = tuple(int(size) for size in latent_shape)
        if not shape or any(size < 1 for size in shape):
            raise GeneratorSpecError(f"latent_shape must be non-empty positive sizes, got {list(latent_shape)}")
        if classes is not None and (not isinstance(classes, int) or classes < 1):
            raise GeneratorSpecError(f"classes must be a positive int or None, got {classes!r}")
        self.module = module
        self.latent_shape = shape
        self.prior = prior or StandardNormal()
        self.kind = kind
        self.classes = classes
        self.label = label
        self.frozen_noise = frozen_noise
        self.call_kwargs = dict(call_kwargs or {})
        self.name = name
        self.description = description
        self._dtype = dtype
        if classifier is not None and not callable(classifier):
            raise GeneratorSpecError(f"classifier must be callable (outputs -> class probabilities), got "
                                     f"{type(classifier).__name__}")
        object.__setattr__(self, "classifier", classifier)  # a plain attribute, not a registered submodule
        self.output_shape = self._probe_output_shape()
        probe = self.condition(0) if self.conditional and label is None else self
        self._report = nonlinearities(probe, self.sample_latents(1, seed=0))

    @property
    def latent_dim(self) -> int:
        return math.prod(self.latent_shape)

    @property
    def conditional(self) -> bool:
        return self.classes is not None

    @property
    def piecewise_affine(self) -> bool:
        """True when every latent-dependent operation is affine or piecewise linear (detected by a probe pass)."""
        return self._report.piecewise_affine

    @property
    def dtype(self) -> torch.dtype:
        """The parameters' dtype; for a module without parameters, the ``dtype`` given (default float32)."""
        parameter = next((p for p in self.module.parameters() if p.is_floating_point()), None)
        if parameter is not None:
            return parameter.dtype
        return self._dtype or torch.get_default_dtype()

    @property
    def device(self) -> torch.device:
        parameter = next(iter(self.module.parameters()), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    def forward(self, latents: Tensor, labels: Tensor | None = None) -> Tensor:
        """``(N, *latent_shape)`` latents (and ``(N,)`` labels if conditional) -> ``(N, *output_shape)``."""
        if tuple(latents.shape[1:]) != self.latent_shape:
            raise InvalidArgumentError(
                f"{self.name} takes latents of shape (N, {', '.join(map(str, self.latent_shape))}), "
                f"got {tuple(latents.shape)}"
            )
        if not self.conditional:
            return self.module(latents, **self.call_kwargs)
        if labels is None:
            if self.label is None:
                raise InvalidArgumentError(
                    f"{self.name} is conditional on {self.classes} classes: pass labels, or use .condition(label)"
                )
            labels = torch.full((latents.shape[0],), self.label, dtype=torch.long, device=latents.device)
        return self.module(latents, labels, **self.call_kwargs)

    def condition(self, label: int) -> Generator:
        """A view of this conditional generator with class ``label`` fixed (shares the module; no copy)."""
        if self.classes is None:
            raise InvalidArgumentError(f"{self.name} is not conditional; it has no classes to condition on")
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < self.classes:
            raise InvalidArgumentError(f"label must be an int in [0, {self.classes}), got {label!r}")
        return Generator(self.module, latent_shape=self.latent_shape, prior=self.prior, kind=self.kind,
                         classes=self.classes, frozen_noise=self.frozen_noise, call_kwargs=self.call_kwargs,
                         name=f"{self.name}[{label}]", description=self.description, label=label,
                         dtype=self._dtype, classifier=self.classifier)

    @torch.no_grad()
    def class_probabilities(self, latents: Tensor, *, batch_size: int = 4096) -> Tensor:
        """``(N, C)`` float64 class probabilities of the outputs of ``latents``, from the generator's classifier (on
        the CPU). Raises ``InvalidArgumentError`` when the generator has none."""
        classifier = self.classifier
        if classifier is None:
            raise InvalidArgumentError(f"{self.name} has no classifier; add classifier = 'package.module:callable' "
                                       "to its spec, or pass one to Generator(..., classifier=...)",
                                       field="classifier")
        parameter = next(iter(classifier.parameters()), None) if isinstance(classifier, nn.Module) else None
        chunks = []
        for batch in latents.split(batch_size):
            outputs = self(batch)
            if parameter is not None:
                outputs = outputs.to(device=parameter.device, dtype=parameter.dtype)
            chunks.append(classifier(outputs).to(torch.float64).cpu())
        return torch.cat(chunks) if chunks else torch.zeros(0, 0, dtype=torch.float64)

    def sample_latents(self, n: int, *, seed: int | None = None) -> Tensor:
        """``n`` latents from the prior, in the generator's dtype and on its device; same seed, same latents."""
        return self.prior.sample(n, self.latent_shape, seed=seed, dtype=self.dtype, device=self.device)

    def log_prior(self, latents: Tensor) -> Tensor:
        """``(N,)`` float64 log prior density of ``latents``."""
        return self.prior.log_prob(latents)

    def info(self) -> GeneratorInfo:
        return GeneratorInfo(
            name=self.name, kind=self.kind, latent_shape=self.latent_shape, output_shape=self.output_shape,
            prior=self.prior.describe(), piecewise_affine=self.piecewise_affine,
            smooth_operations=self._report.smooth, classes=self.classes, label=self.label,
            frozen_noise=self.frozen_noise, dtype=str(self.dtype).removeprefix("torch."),
            description=self.description,
        )

    def _probe_output_shape(self) -> tuple[int, ...]:
        latent = self.sample_latents(1, seed=0)
        labels = None
        if self.conditional and self.label is None:
            labels = torch.zeros(1, dtype=torch.long, device=latent.device)
        with torch.no_grad():
            try:
                first, second = self(latent, labels), self(latent, labels)
            except (RuntimeError, TypeError, ValueError) as error:
                raise GeneratorSpecError(
                    f"{self.name} failed on a latent of shape {tuple(latent.shape)}: {error}. "
                    "Check latent_shape (and classes for a conditional generator)"
                ) from error
        if not isinstance(first, Tensor) or first.ndim < 1 or first.shape[0] != 1:
            raise GeneratorSpecError(f"{self.name} must return a tensor (N, ...); got {type(first).__name__}")
        if not torch.equal(first, second):
            raise GeneratorModeError(
                f"{self.name} returns different outputs for the same latent: it draws random noise (or has dropout "
                "active). Freeze the noise (e.g. call_kwargs = {noise_mode = 'const'}) or call module.eval()"
            )
        return tuple(first.shape[1:])
