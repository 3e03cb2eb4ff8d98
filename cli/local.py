"""``--local``: the calls of :class:`gendebias.clients.Client`, run in this process with the library.

:class:`LocalBackend` has the ``Client`` methods the commands use and returns the same result dataclasses, so a
command prints and writes the same thing whichever backend answered. It only wires the library together
(``load_generator`` and :mod:`gendebias.geometry`); the maths lives there.
"""

from __future__ import annotations

import math
import secrets
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import gendebias.geometry as geometry
from gendebias.clients import GeneratorInfo, LogVolumes, Resampled, ResampleProgress, Reweighted
from gendebias.generators import Generator, builtin_registry, load_generator


class LocalBackend:
    """In-process stand-in for ``Client`` over the built-in zoo (or a spec file / diffusers folder path)."""

    def list_generators(self) -> list[GeneratorInfo]:
        registry = builtin_registry()
        return [generator_info(id, registry[id]) for id in registry]

    def get_generator(self, generator_id: str) -> GeneratorInfo:
        return generator_info(generator_id, load_generator(generator_id))

    def log_volumes(self, generator_id: str, latents: np.ndarray, *, top_k: int | None = None,
                    tile_codes: bool = False, method: str = "exact", precision: str = "fp32") -> LogVolumes:
        generator = load_generator(generator_id)
        batch = _latents(generator, latents)
        codes = geometry.tile_codes(generator, batch).numpy() if tile_codes else None
        estimate = geometry.log_volume_estimate(generator, batch, top_k=top_k, method=method,
                                                precision=precision)
        return LogVolumes(log_volumes=estimate.log_volume.numpy(), tile_codes=codes, errors=estimate.error.numpy(),
                          method=estimate.method, precision=estimate.precision, products=estimate.products)

    def reweight(self, generator_id: str, latents: np.ndarray, *, rho: float = 1.0,
                 target: str = "tilted") -> Reweighted:
        generator = load_generator(generator_id)
        batch = _latents(generator, latents)
        volumes = geometry.log_volume(generator, batch)
        classes = generator.class_probabilities(batch) if target == "balanced" else None
        weights = geometry.log_weights(volumes, rho=rho, target=target, class_probabilities=classes)
        return Reweighted(log_weights=weights.numpy(), log_volumes=volumes.numpy(),
                          ess=geometry.effective_sample_size(weights), max_weight=geometry.max_weight(weights))

    def resample(self, generator_id: str, n: int, *, rho: float = 1.0, proposals: int | None = None,
                 scheme: str = "multinomial", sampler: str = "auto", seed: int | None = None,
                 return_outputs: bool = False, max_evaluations: int | None = None,
                 progress: Callable[[ResampleProgress], None] | None = None) -> Resampled:
        """:func:`gendebias.geometry.sample` in process (SIR pool: ``proposals``, default ``10 n``)."""
        generator = load_generator(generator_id)
        seed = secrets.randbits(63) if seed is None else seed
        settings = geometry.SIRSettings(proposals=proposals, scheme=scheme) if sampler in ("sir", "auto") else None
        started = time.monotonic()

        def report(step: geometry.Progress) -> None:
            if progress is not None:
                progress(ResampleProgress(step.sampler, step.beta, step.evaluations, step.step,
                                          time.monotonic() - started))

        result = geometry.sample(generator, n, rho=rho, sampler=sampler, seed=seed, settings=settings,
                                 max_evaluations=max_evaluations, progress=report)
        outputs = None
        if return_outputs:
            with torch.no_grad():
                outputs = generator(result.latents).numpy()
        return _resampled(result, outputs)

    def close(self) -> None:
        """Nothing to release (here for symmetry with ``Client``)."""


def _resampled(result: geometry.SampleResult, outputs: np.ndarray | None) -> Resampled:
    """The SDK's result type from the library's (what the server's summary would carry)."""
    trace = result.trace
    sir = trace if isinstance(trace, geometry.SIRTrace) else None
    smc = trace if isinstance(trace, geometry.SMCTrace) else None
    proposals = sir.proposals if sir else smc.particles if smc else getattr(trace, "chains", 0)
    acceptance = smc.acceptance if smc else [] if sir else [getattr(trace, "acceptance", math.nan)]
    drawn = Resampled(
        latents=result.latents.numpy(), log_weights=None if result.log_weights is None else result.log_weights.numpy(),
        indices=None if sir is None else sir.indices.numpy(), outputs=outputs, ess=result.ess,
        max_weight=sir.max_weight if sir else math.nan, distinct=result.distinct, proposals=proposals,
        evaluations=result.evaluations, scheme=sir.scheme if sir else "multinomial", sampler=result.sampler,
        seed=result.seed, acceptance_rate=sir.acceptance_rate if sir else math.nan, stopped=result.stopped,
        beta=result.beta, choice=result.choice, warnings=result.warnings,
        pool_ess=sir.pool_ess if sir else math.nan,
        diagnostics={"schedule": smc.schedule if smc else [], "ess_history": smc.step_ess if smc else [],
                     "acceptance_rates": acceptance, "log_normalizer": smc.log_normalizer if smc else math.nan,
                     "autocorrelation_ess": result.ess if result.sampler == "mcmc" else math.nan})
    for message in result.warnings:
        warnings.warn(f"Resample: {message}", UserWarning, stacklevel=3)
    return drawn


def generator_info(generator_id: str, generator: Generator) -> GeneratorInfo:
    """The SDK's description of an in-process generator (what the server's ``GetGenerator`` would say)."""
    info = generator.info()
    parameters: dict[str, Any] = {key: value for key, value in info.prior.items() if key != "name"}
    return GeneratorInfo(
        generator_id=generator_id, description=info.description, kind=info.kind, latent_shape=info.latent_shape,
        output_shape=info.output_shape, prior=str(info.prior.get("name", "")),
        prior_parameters={key: float(value) for key, value in parameters.items()},
        piecewise_affine=info.piecewise_affine, smooth_operations=info.smooth_operations, classes=info.classes,
        frozen_noise=info.frozen_noise, dtype=info.dtype,
    )


def _latents(generator: Generator, latents: np.ndarray) -> torch.Tensor:
    """File latents as a tensor in the generator's dtype (the geometry checks their shape)."""
    return torch.from_numpy(np.array(latents, copy=True)).to(generator.dtype)
