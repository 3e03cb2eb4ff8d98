"""``DebiasService``: decode and validate, hand the work to the batching engine and the geometry, encode.

No maths lives here (STYLE.md rule 6): log-volumes come from :class:`~gendebias.service.batching.BatchingEngine`,
weights and resampling from :mod:`gendebias.geometry`. Each RPC's status codes are listed in the .proto file.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import grpc
import torch
from torch import Tensor

from gendebias.errors import GendebiasError, InvalidArgumentError, UnknownGeneratorError
from gendebias.generators import Generator
from gendebias.geometry import effective_sample_size, log_weights, max_weight, resample_pool, sample
from gendebias.service import decoding
from gendebias.service.batching import BatchingEngine, Options
from gendebias.service.config import ServiceConfig
from gendebias.service.metrics import Metrics
from gendebias.service.status import abort, as_gendebias_error
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc
from gendebias.v1 import tensor_pb2

DTYPES = {torch.float32: tensor_pb2.DATA_TYPE_FLOAT32, torch.float64: tensor_pb2.DATA_TYPE_FLOAT64}


def _observed(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Count and time the RPC, and turn any exception into its status (INTERNAL without details if unexpected)."""
    method = handler.__name__

    def finish(servicer: DebiasServicer, started: float, code: str) -> None:
        servicer.metrics.requests.labels(method, code).inc()
        servicer.metrics.latency.labels(method).observe(time.perf_counter() - started)

    async def fail(servicer: DebiasServicer, context: grpc.aio.ServicerContext, error: Exception,
                   started: float) -> None:
        known = as_gendebias_error(error)
        servicer.metrics.errors.labels(known.reason).inc()
        finish(servicer, started, known.code)
        await abort(context, known)

    if inspect.isasyncgenfunction(handler):
        @functools.wraps(handler)
        async def streaming(self: DebiasServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                async for response in handler(self, request, context):
                    yield response
            except (asyncio.CancelledError, grpc.aio.AbortError):
                raise
            except Exception as error:  # every failure becomes a status
                await fail(self, context, error, started)
            finish(self, started, "OK")
        return streaming

    @functools.wraps(handler)
    async def unary(self: DebiasServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        try:
            response = await handler(self, request, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as error:  # every failure becomes a status
            await fail(self, context, error, started)
        finish(self, started, "OK")
        return response
    return unary


class DebiasServicer(pb_grpc.DebiasServiceServicer):
    def __init__(self, generators: Mapping[str, Generator], engine: BatchingEngine, config: ServiceConfig,
                 metrics: Metrics) -> None:
        self.generators = dict(generators)
        self.engine = engine
        self.config = config
        self.metrics = metrics
        self._conditioned: dict[tuple[str, int], Generator] = {}

    @_observed
    async def ListGenerators(self, request: pb.ListGeneratorsRequest,
                             context: grpc.aio.ServicerContext) -> pb.ListGeneratorsResponse:
        return pb.ListGeneratorsResponse(generators=[self._info(id) for id in sorted(self.generators)])

    @_observed
    async def GetGenerator(self, request: pb.GetGeneratorRequest,
                           context: grpc.aio.ServicerContext) -> pb.GetGeneratorResponse:
        self._generator(request.generator_id, None)
        return pb.GetGeneratorResponse(generator=self._info(request.generator_id))

    @_observed
    async def ComputeLogVolumes(self, requests: AsyncIterator[pb.ComputeLogVolumesRequest],
                                context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ComputeLogVolumesResponse]:
        first: pb.ComputeLogVolumesRequest | None = None
        offset = 0
        async for request in requests:
            first = first or request
            generator = self._generator(first.generator_id, _label(first))
            options = decoding.volume_options(first, generator)
            latents = self._latents(request.latents, generator, offset)
            result = await self.engine.log_volumes(first.generator_id, generator, latents, options)
            yield pb.ComputeLogVolumesResponse(
                offset=offset, log_volumes=decoding.wire(result.log_volumes),
                singular_values=_optional_wire(result.singular_values), tile_codes=_optional_wire(result.tile_codes),
                errors=_optional_wire(result.errors), method=decoding.METHOD_CODES[result.method],
                precision=decoding.PRECISION_CODES[result.precision], products=result.products)
            offset += latents.shape[0]

    @_observed
    async def Reweight(self, requests: AsyncIterator[pb.ReweightRequest],
                       context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ReweightResponse]:
        first: pb.ReweightRequest | None = None
        proposals: list[Tensor] = []
        chunks: list[Tensor] = []
        async for request in requests:  # validate every chunk as it arrives; compute once all are in
            first = first or request
            generator = self._generator(first.generator_id, _label(first))
            latents = self._latents(request.latents, generator, sum(c.shape[0] for c in chunks))
            chunks.append(latents)
            if request.HasField("log_proposal") or proposals:
                proposals.append(decoding.log_density_from(request.log_proposal, latents.shape[0],
                                                           field="log_proposal"))
        if first is None:
            raise InvalidArgumentError("Reweight needs at least one message with latents", field="latents")
        generator = self._generator(first.generator_id, _label(first))
        options = Options(decoding.top_k_from(first.top_k, generator))
        latents = torch.cat(chunks)
        volumes = (await self.engine.log_volumes(first.generator_id, generator, latents, options)).log_volumes
        target = decoding.choice_from(first.target, decoding.TARGETS, field="target")
        rho = decoding.rho_from(first.HasField("rho"), first.rho)
        log_proposal = torch.cat(proposals) if proposals else None
        if log_proposal is not None and log_proposal.shape[0] != volumes.shape[0]:
            raise InvalidArgumentError("log_proposal must accompany every chunk of latents", field="log_proposal")
        log_prior = generator.log_prior(latents) if target == "tilted" and log_proposal is not None else None
        weights = log_weights(volumes, rho=rho, target=target, log_proposal=log_proposal, log_prior=log_prior)
        for rows in decoding.row_slices(weights.shape[0], 16, self.config.message_bytes):
            chunk = pb.ReweightChunk(offset=rows.start, log_weights=decoding.wire(weights[rows]),
                                     log_volumes=decoding.wire(volumes[rows]))
            yield pb.ReweightResponse(chunk=chunk)
        yield pb.ReweightResponse(summary=pb.ReweightSummary(
            count=weights.shape[0], ess=effective_sample_size(weights), max_weight=max_weight(weights)))

    @_observed
    async def Resample(self, request: pb.ResampleRequest,
                       context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ResampleResponse]:
        generator = self._generator(request.generator_id, _label(request))
        n = decoding.count_within(request.n, self.config.max_n, field="n")
        sampler = decoding.choice_from(request.sampler, decoding.SAMPLERS, field="sampler")
        scheme = decoding.choice_from(request.scheme, decoding.SCHEMES, field="scheme")
        target = decoding.choice_from(request.target, decoding.TARGETS, field="target")
        rho = decoding.rho_from(request.HasField("rho"), request.rho)
        top_k = decoding.top_k_from(request.top_k, generator)
        seed = request.seed if request.HasField("seed") else secrets.randbits(63)
        if sampler != "sir":
            async for response in self._sampled(request, generator, sampler, n, rho, target, top_k, seed, context):
                yield response
            return
        proposals = decoding.count_within(self._pool_size(request, n), self.config.max_proposals, field="proposals")
        pool = await asyncio.to_thread(generator.sample_latents, proposals, seed=seed)
        volumes = (await self.engine.log_volumes(request.generator_id, generator, pool, Options(top_k))).log_volumes
        log_proposal = generator.log_prior(pool) if target == "uniform" else None
        result = await asyncio.to_thread(resample_pool, pool, volumes, n, rho=rho, target=target,
                                         log_proposal=log_proposal, scheme=scheme, seed=seed)
        indices = result.diagnostics["indices"]
        row_bytes = generator.latent_dim * 8 + 16 + (math.prod(generator.output_shape) * 8 if request.return_outputs
                                                     else 0)
        for rows in decoding.row_slices(n, row_bytes, self.config.message_bytes):
            latents = result.latents[rows]
            chunk = pb.ResampleChunk(offset=rows.start, latents=decoding.wire(latents),
                                     log_weights=decoding.wire(result.log_weights[rows]),
                                     indices=decoding.wire(indices[rows]))
            if request.return_outputs:
                chunk.outputs.CopyFrom(decoding.wire(await asyncio.to_thread(_outputs, generator, latents)))
            yield pb.ResampleResponse(chunk=chunk)
        yield pb.ResampleResponse(summary=pb.ResampleSummary(
            n=n, proposals=proposals, ess=result.ess, max_weight=result.max_weight, distinct=result.distinct,
            evaluations=proposals, scheme=decoding.SCHEME_CODES[scheme], sampler=pb.SAMPLER_SIR, seed=seed,
            acceptance_rate=result.diagnostics["acceptance_rate"], stopped="done"))

    async def _sampled(self, request: pb.ResampleRequest, generator: Generator, sampler: str, n: int, rho: float,
                       target: str, top_k: int | None, seed: int,
                       context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ResampleResponse]:
        """SMC or MCMC on the device thread, stopped cleanly by the evaluation budget or the call's deadline."""
        budget = decoding.count_within(request.max_evaluations or self.config.max_evaluations,
                                       self.config.max_evaluations, field="max_evaluations")
        population = decoding.count_within(request.particles or (n if sampler == "smc" else min(n, 32)),
                                           self.config.max_proposals, field="particles")
        remaining = context.time_remaining()
        deadline = None if remaining is None else 0.8 * remaining
        sizes = {"particles": max(population, n)} if sampler == "smc" else {"chains": population}
        result = await self.engine.run(sample, generator, n, rho=rho, target=target, top_k=top_k, sampler=sampler,
                                       seed=seed, max_evaluations=budget, deadline=deadline, **sizes)
        latents, trace = result.latents, result.diagnostics
        count = latents.shape[0]
        row_bytes = generator.latent_dim * 8 + (math.prod(generator.output_shape) * 8 if request.return_outputs else 0)
        for rows in decoding.row_slices(count, row_bytes, self.config.message_bytes):
            chunk = pb.ResampleChunk(offset=rows.start, latents=decoding.wire(latents[rows]))
            if request.return_outputs:
                chunk.outputs.CopyFrom(decoding.wire(await self.engine.run(_outputs, generator, latents[rows])))
            yield pb.ResampleResponse(chunk=chunk)
        acceptance = trace["acceptance"]
        yield pb.ResampleResponse(summary=pb.ResampleSummary(
            n=count, proposals=population, ess=result.ess, distinct=result.distinct, evaluations=result.evaluations,
            sampler=decoding.SAMPLER_CODES[sampler], seed=seed, acceptance_rate=math.nan, max_weight=math.nan,
            schedule=trace.get("schedule", []), ess_history=trace.get("ess_history", []),
            acceptance_rates=acceptance if isinstance(acceptance, list) else [acceptance],
            log_normalizer=trace.get("log_normalizer", math.nan),
            autocorrelation_ess=trace.get("autocorrelation_ess", math.nan), stopped=trace["stopped"]))

    def _pool_size(self, request: pb.ResampleRequest, n: int) -> int:
        if request.proposals:
            return request.proposals
        oversampling = request.oversampling if request.HasField("oversampling") else 10.0
        if not (math.isfinite(oversampling) and oversampling >= 1):
            raise InvalidArgumentError(f"oversampling must be >= 1, got {oversampling}", field="oversampling")
        return math.ceil(n * oversampling)

    def _latents(self, message: tensor_pb2.Tensor, generator: Generator, seen: int) -> Tensor:
        latents = decoding.latents_from(message, generator, max_elements=self.config.max_latents
                                        * generator.latent_dim)
        decoding.count_within(seen + latents.shape[0], self.config.max_latents, field="latents", minimum=0)
        return latents

    def _generator(self, generator_id: str, label: int | None) -> Generator:
        if generator_id not in self.generators:
            raise UnknownGeneratorError(f"unknown generator {generator_id!r}; this server has "
                                        f"{sorted(self.generators)}", field="generator_id")
        generator = self.generators[generator_id]
        if label is None:
            if generator.conditional:
                raise InvalidArgumentError(f"{generator_id} is conditional on {generator.classes} classes: "
                                           "set label", field="label")
            return generator
        if (generator_id, label) not in self._conditioned:
            try:
                self._conditioned[(generator_id, label)] = generator.condition(label)
            except GendebiasError as error:
                error.field = "label"
                raise
        return self._conditioned[(generator_id, label)]

    def _info(self, generator_id: str) -> pb.GeneratorInfo:
        info = self.generators[generator_id].info()
        parameters = {key: float(value) for key, value in info.prior.items() if key != "name"}
        return pb.GeneratorInfo(
            generator_id=generator_id, description=info.description, kind=info.kind,
            latent_shape=list(info.latent_shape), output_shape=list(info.output_shape), prior=info.prior["name"],
            prior_parameters=parameters, piecewise_affine=info.piecewise_affine,
            smooth_operations=list(info.smooth_operations), classes=info.classes or 0,
            frozen_noise=info.frozen_noise, dtype=DTYPES.get(self.generators[generator_id].dtype, 0))


def _label(request: Any) -> int | None:
    return int(request.label) if request.HasField("label") else None


def _optional_wire(values: Tensor | None) -> tensor_pb2.Tensor | None:
    return None if values is None else decoding.wire(values)


def _outputs(generator: Generator, latents: Tensor) -> Tensor:
    with torch.no_grad():
        return generator(latents)
