"""``DebiasService``: decode and validate, hand the work to the batching engine and the geometry, encode.

No maths lives here (docs/design.md#conventions): log-volumes come from
:class:`~gendebias.service.batching.BatchingEngine`, weights and resampling from :mod:`gendebias.geometry`. Each
RPC's status codes are listed in the .proto file.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import math
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import grpc
import torch
from google.protobuf.message import DecodeError, Message
from torch import Tensor

from gendebias.errors import (
    GendebiasError,
    InvalidArgumentError,
    LimitExceededError,
    UnknownGeneratorError,
    shown,
)
from gendebias.generators import Generator
from gendebias.geometry import (
    MCMCSettings,
    Progress,
    SampleResult,
    SIRSettings,
    SIRTrace,
    SMCSettings,
    SMCTrace,
    effective_sample_size,
    log_weights,
    max_weight,
    sample,
    sample_options,
)
from gendebias.service import decoding
from gendebias.service.batching import BatchingEngine, Options
from gendebias.service.config import ServiceConfig
from gendebias.service.metrics import Metrics
from gendebias.service.status import abort, as_gendebias_error
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc
from gendebias.v1 import tensor_pb2

SERVICE = pb.DESCRIPTOR.services_by_name["DebiasService"]
REQUESTS: dict[str, type[Message]] = {name: getattr(pb, method.input_type.name)
                                      for name, method in SERVICE.methods_by_name.items()}
STREAMED = {name: method.client_streaming for name, method in SERVICE.methods_by_name.items()}
# A call grpc cancels this close to its deadline counts as DEADLINE_EXCEEDED: the client's deadline passes first (the
# server's copy of it starts when the call arrives), and its client ends the call as cancelled.
DEADLINE_SLACK = 0.1
DTYPES = {torch.float32: tensor_pb2.DATA_TYPE_FLOAT32, torch.float64: tensor_pb2.DATA_TYPE_FLOAT64}


def _observed(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Count and time the RPC, and turn any exception into its status (INTERNAL without details if unexpected).

    A call that grpc cancels while its handler works (its client cancelled or left, or its deadline passed) is
    counted as ``CANCELLED`` or ``DEADLINE_EXCEEDED``.
    """
    method = handler.__name__
    parse = functools.partial(_parsed, REQUESTS[method])

    async def fail(tally: _Tally, context: grpc.aio.ServicerContext, error: Exception) -> None:
        known = as_gendebias_error(error)
        tally.metrics.errors.labels(known.reason).inc()
        tally.count(known.code)
        await abort(context, known)

    if inspect.isasyncgenfunction(handler):
        @functools.wraps(handler)
        async def streaming(self: DebiasServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
            tally = _Tally(self.metrics, method, context)
            try:
                request = _parsed_stream(parse, request) if STREAMED[method] else parse(request)
                async for response in handler(self, request, context):
                    yield response
            except (asyncio.CancelledError, GeneratorExit):
                tally.gone()
                raise
            except grpc.aio.AbortError:  # counted by fail() before it aborted
                raise
            except Exception as error:  # every failure becomes a status
                await fail(tally, context, error)
            tally.finished()
        return streaming

    @functools.wraps(handler)
    async def unary(self: DebiasServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
        tally = _Tally(self.metrics, method, context)
        try:
            request = _parsed_stream(parse, request) if STREAMED[method] else parse(request)
            response = await handler(self, request, context)
        except asyncio.CancelledError:
            tally.gone()
            raise
        except grpc.aio.AbortError:  # counted by fail() before it aborted
            raise
        except Exception as error:  # every failure becomes a status
            await fail(tally, context, error)
        tally.finished()
        return response
    return unary


def _parsed(kind: type[Message], request: Message | bytes) -> Message:
    """The request message from its wire bytes (the server hands them over undecoded, so that a corrupt message is
    INVALID_ARGUMENT: grpc's own decoding answers UNKNOWN or INTERNAL and logs a traceback per call)."""
    if not isinstance(request, bytes):
        return request
    try:
        return kind.FromString(request)
    except DecodeError:
        raise InvalidArgumentError(f"the request is not a valid {kind.DESCRIPTOR.full_name} message") from None


async def _parsed_stream(parse: Callable[[Message | bytes], Message],
                         requests: AsyncIterator[Message | bytes]) -> AsyncIterator[Message]:
    async for request in requests:
        yield parse(request)


def add_to_server(servicer: DebiasServicer, server: grpc.aio.Server) -> None:
    """Register ``servicer`` like the generated ``add_DebiasServiceServicer_to_server``, but with its requests
    undecoded: :func:`_observed` decodes them."""
    handlers = {}
    for name, method in SERVICE.methods_by_name.items():
        response = getattr(pb, method.output_type.name)
        factory = {(False, False): grpc.unary_unary_rpc_method_handler,
                   (True, False): grpc.stream_unary_rpc_method_handler,
                   (False, True): grpc.unary_stream_rpc_method_handler,
                   (True, True): grpc.stream_stream_rpc_method_handler}[(method.client_streaming,
                                                                          method.server_streaming)]
        handlers[name] = factory(getattr(servicer, name), response_serializer=response.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),))
    server.add_registered_method_handlers(SERVICE.full_name, handlers)


class _Tally:
    """One call's entry in ``gendebias_requests_total`` and its latency, made once."""

    def __init__(self, metrics: Metrics, method: str, context: grpc.aio.ServicerContext) -> None:
        self.metrics, self.method, self.context = metrics, method, context
        self.started = time.perf_counter()
        self.counted = False

    def count(self, code: str) -> None:
        if not self.counted:
            self.counted = True
            self.metrics.requests.labels(self.method, code).inc()
            self.metrics.latency.labels(self.method).observe(time.perf_counter() - self.started)

    def gone(self) -> None:
        self.count("DEADLINE_EXCEEDED" if self._past_deadline() else "CANCELLED")

    def finished(self) -> None:
        """A handler that ran to its end past the deadline (its request stream ended when the deadline passed) did not
        answer: grpc tells its client DEADLINE_EXCEEDED."""
        self.count("DEADLINE_EXCEEDED" if self._past_deadline() else "OK")

    def _past_deadline(self) -> bool:
        remaining = self.context.time_remaining()
        return remaining is not None and remaining <= DEADLINE_SLACK


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
        self.engine.admit()  # before reading: a stream the queue cannot take is refused before it is buffered
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
        self.engine.admit()  # before reading: a stream the queue cannot take is refused before it is buffered
        first: pb.ReweightRequest | None = None
        proposals: list[Tensor] = []
        chunks: list[Tensor] = []
        seen = 0
        async for request in requests:  # validate every chunk as it arrives; compute once all are in
            first = first or request
            generator = self._generator(first.generator_id, _label(first))
            latents = self._latents(request.latents, generator, seen)
            seen += latents.shape[0]
            chunks.append(latents)
            if request.HasField("log_proposal") or proposals:
                proposals.append(decoding.log_density_from(request.log_proposal, latents.shape[0],
                                                           field="log_proposal"))
        if first is None:
            raise InvalidArgumentError("Reweight needs at least one message with latents", field="latents")
        generator = self._generator(first.generator_id, _label(first))
        options = Options(decoding.top_k_from(first.top_k, generator))
        latents = torch.cat(chunks)
        target = decoding.choice_from(first.target, decoding.TARGETS, field="target")
        if target == "balanced" and generator.classifier is None:
            raise InvalidArgumentError(f"target=balanced needs a generator with a classifier; {first.generator_id!r} "
                                       "has none (add classifier = ... to its spec)", field="target")
        rho = decoding.rho_from(first.HasField("rho"), first.rho)
        volumes = (await self.engine.log_volumes(first.generator_id, generator, latents, options)).log_volumes
        log_proposal = torch.cat(proposals) if proposals else None
        if log_proposal is not None and log_proposal.shape[0] != volumes.shape[0]:
            raise InvalidArgumentError("log_proposal must accompany every chunk of latents", field="log_proposal")
        log_prior = generator.log_prior(latents) if target != "uniform" and log_proposal is not None else None
        classes = await self.engine.run(generator.class_probabilities, latents) if target == "balanced" else None
        weights = log_weights(volumes, rho=rho, target=target, log_proposal=log_proposal, log_prior=log_prior,
                              class_probabilities=classes)
        for rows in decoding.row_slices(weights.shape[0], 16, self.config.message_bytes):
            chunk = pb.ReweightChunk(offset=rows.start, log_weights=decoding.wire(weights[rows]),
                                     log_volumes=decoding.wire(volumes[rows]))
            yield pb.ReweightResponse(chunk=chunk)
        yield pb.ReweightResponse(summary=pb.ReweightSummary(
            count=weights.shape[0], ess=effective_sample_size(weights), max_weight=max_weight(weights)))

    @_observed
    async def Resample(self, request: pb.ResampleRequest,
                       context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ResampleResponse]:
        arrived = time.monotonic()
        generator = self._generator(request.generator_id, _label(request))
        n = decoding.count_within(request.n, self.config.max_n, field="n")
        sampler = decoding.choice_from(request.sampler, decoding.SAMPLERS, field="sampler")
        scheme = decoding.choice_from(request.scheme, decoding.SCHEMES, field="scheme")
        target = decoding.choice_from(request.target, decoding.TARGETS, field="target")
        rho = decoding.rho_from(request.HasField("rho"), request.rho)
        top_k = decoding.top_k_from(request.top_k, generator)
        seed = request.seed if request.HasField("seed") else secrets.randbits(63)
        budget = decoding.count_within(request.max_evaluations or self.config.max_evaluations,
                                       self.config.max_evaluations, field="max_evaluations")
        settings = self._sampler_settings(request, sampler, n, scheme)
        sample_options(generator, rho=rho, target=target, sampler=sampler, seed=seed)
        self.engine.admit()
        remaining = context.time_remaining()
        stop_at = None if remaining is None else arrived + 0.8 * remaining
        run = _SamplerRun(self.engine, request.generator_id, generator, Options(top_k), asyncio.get_running_loop())
        progress: asyncio.Queue[Progress] = asyncio.Queue()
        report = functools.partial(_report, run.loop, progress) if request.stream_progress else None
        task = asyncio.ensure_future(self.engine.run_sampler(
            run.sample, n, rho=rho, target=target, sampler=sampler, seed=seed, max_evaluations=budget,
            stop_at=stop_at, settings=settings, progress=report))
        waiter: asyncio.Future[Progress] | None = None
        try:
            while not task.done():
                waiter = asyncio.ensure_future(progress.get())
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if waiter.done():
                    yield pb.ResampleResponse(progress=_progress_message(waiter.result(), arrived))
            result = task.result()
        finally:
            run.stop()
            task.cancel()
            if waiter is not None:
                waiter.cancel()
        async for response in self._resampled(request, generator, result, n):
            yield response

    async def _resampled(self, request: pb.ResampleRequest, generator: Generator, result: SampleResult,
                         n: int) -> AsyncIterator[pb.ResampleResponse]:
        latents = result.latents
        count = latents.shape[0]
        sir = result.trace if isinstance(result.trace, SIRTrace) else None
        row_bytes = generator.latent_dim * 8 + 16 + (math.prod(generator.output_shape) * 8 if request.return_outputs
                                                     else 0)
        for rows in decoding.row_slices(count, row_bytes, self.config.message_bytes):
            chunk = pb.ResampleChunk(offset=rows.start, latents=decoding.wire(latents[rows]))
            if sir is not None and result.log_weights is not None:
                chunk.log_weights.CopyFrom(decoding.wire(result.log_weights[rows]))
                chunk.indices.CopyFrom(decoding.wire(sir.indices[rows]))
            if request.return_outputs:
                chunk.outputs.CopyFrom(decoding.wire(await self.engine.run(_outputs, generator, latents[rows])))
            yield pb.ResampleResponse(chunk=chunk)
        yield pb.ResampleResponse(summary=_summary(result, n))

    def _sampler_settings(self, request: pb.ResampleRequest, sampler: str, n: int,
                          scheme: str) -> SIRSettings | SMCSettings | MCMCSettings:
        """The named sampler's settings from the request, each checked against the server's limits."""
        if sampler == "mcmc":
            chains = decoding.count_within(request.particles or min(n, 32), self.config.max_proposals,
                                           field="particles")
            return MCMCSettings(chains=chains)
        if sampler == "smc" or (sampler == "auto" and request.particles):
            particles = decoding.count_within(max(request.particles or n, n), self.config.max_proposals,
                                              field="particles")
            return SMCSettings(particles=particles)
        if sampler == "auto":
            return SIRSettings(scheme=scheme)
        proposals = decoding.count_within(self._pool_size(request, n), self.config.max_proposals, field="proposals")
        return SIRSettings(proposals=proposals, scheme=scheme)

    def _pool_size(self, request: pb.ResampleRequest, n: int) -> int:
        if request.proposals:
            return request.proposals
        oversampling = request.oversampling if request.HasField("oversampling") else 10.0
        if not (math.isfinite(oversampling) and oversampling >= 1):
            raise InvalidArgumentError(f"oversampling must be >= 1, got {oversampling}", field="oversampling")
        if n * oversampling > self.config.max_proposals:  # compared as floats: ceil() of an infinite pool overflows
            raise LimitExceededError(f"oversampling={oversampling:g} makes a pool of n * oversampling latents over "
                                     f"this server's limit of {self.config.max_proposals} proposals",
                                     field="oversampling")
        return math.ceil(n * oversampling)

    def _latents(self, message: tensor_pb2.Tensor, generator: Generator, seen: int) -> Tensor:
        """One message's latents, refused from its declared shape (before anything is allocated) when the stream's
        total would pass ``max_latents``."""
        remaining = max(self.config.max_latents - seen, 0)
        try:
            return decoding.latents_from(message, generator, max_elements=remaining * generator.latent_dim)
        except LimitExceededError:
            raise LimitExceededError(f"latents: the stream carries more than this server's limit of "
                                     f"{self.config.max_latents} latents ({seen} so far)", field="latents") from None

    def _generator(self, generator_id: str, label: int | None) -> Generator:
        if generator_id not in self.generators:
            raise UnknownGeneratorError(f"unknown generator {shown(generator_id)}; this server has "
                                        f"{sorted(self.generators)}", field="generator_id")
        generator = self.generators[generator_id]
        if label is None:
            if generator.conditional:
                raise InvalidArgumentError(f"{shown(generator_id)} is conditional on {generator.classes} classes: "
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


class _CancelledError(Exception):
    """Raised on a sampler thread whose call is gone; nobody awaits it, so it never reaches the wire."""


class _SamplerRun:
    """One Resample's sampler, on a sampler thread: its log-volumes go through the batching engine (so it takes
    turns with every other request), and :meth:`stop` (cancel, disconnect, deadline) ends it at its next batch."""

    def __init__(self, engine: BatchingEngine, generator_id: str, generator: Generator, options: Options,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.engine, self.generator_id, self.generator, self.options, self.loop = \
            engine, generator_id, generator, options, loop
        self._stopped = threading.Event()
        self._pending: concurrent.futures.Future[Any] | None = None

    def stop(self) -> None:
        self._stopped.set()
        pending = self._pending
        if pending is not None:
            pending.cancel()

    def should_stop(self) -> str | None:
        return "cancelled" if self._stopped.is_set() else None

    def log_volumes(self, latents: Tensor) -> Tensor:
        if self._stopped.is_set():
            raise _CancelledError("the call was cancelled")
        self._pending = asyncio.run_coroutine_threadsafe(
            self.engine.log_volumes(self.generator_id, self.generator, latents, self.options, admitted=True),
            self.loop)
        try:
            return self._pending.result().log_volumes
        except concurrent.futures.CancelledError:
            raise _CancelledError("the call was cancelled") from None

    def class_probabilities(self, latents: Tensor) -> Tensor:
        """The generator's classifier on the device thread (target ``balanced``)."""
        if self._stopped.is_set():
            raise _CancelledError("the call was cancelled")
        self._pending = asyncio.run_coroutine_threadsafe(
            self.engine.run(self.generator.class_probabilities, latents), self.loop)
        try:
            return self._pending.result()
        except concurrent.futures.CancelledError:
            raise _CancelledError("the call was cancelled") from None

    def sample(self, n: int, *, stop_at: float | None, **options: Any) -> SampleResult:
        deadline = None if stop_at is None else stop_at - time.monotonic()
        if options.get("target") == "balanced":
            options["class_probabilities"] = self.class_probabilities
        return sample(self.generator, n, log_volume_function=self.log_volumes, should_stop=self.should_stop,
                      deadline=deadline, **options)


def _report(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Progress], progress: Progress) -> None:
    loop.call_soon_threadsafe(queue.put_nowait, progress)


def _progress_message(progress: Progress, arrived: float) -> pb.ResampleProgress:
    return pb.ResampleProgress(sampler=decoding.SAMPLER_CODES[progress.sampler], beta=progress.beta,
                               evaluations=progress.evaluations, step=progress.step,
                               seconds=time.monotonic() - arrived)


def _summary(result: SampleResult, n: int) -> pb.ResampleSummary:
    """The summary every sampler sends, from the typed result and its sampler's trace."""
    summary = pb.ResampleSummary(
        n=result.latents.shape[0], ess=result.ess, distinct=result.distinct, evaluations=result.evaluations,
        sampler=decoding.SAMPLER_CODES[result.sampler], seed=result.seed, stopped=result.stopped, beta=result.beta,
        choice=result.choice, warnings=list(result.warnings), max_weight=math.nan, acceptance_rate=math.nan,
        log_normalizer=math.nan, autocorrelation_ess=math.nan, pool_ess=math.nan)
    trace = result.trace
    if isinstance(trace, SIRTrace):
        summary.proposals, summary.max_weight, summary.pool_ess = trace.proposals, trace.max_weight, trace.pool_ess
        summary.scheme, summary.acceptance_rate = decoding.SCHEME_CODES[trace.scheme], trace.acceptance_rate
    elif isinstance(trace, SMCTrace):
        summary.proposals, summary.log_normalizer = trace.particles, trace.log_normalizer
        summary.schedule.extend(trace.schedule)
        summary.ess_history.extend(trace.step_ess)
        summary.acceptance_rates.extend(trace.acceptance)
    else:
        summary.proposals, summary.autocorrelation_ess = trace.chains, result.ess
        summary.acceptance_rates.append(trace.acceptance)
    return summary


def _label(request: Any) -> int | None:
    return int(request.label) if request.HasField("label") else None


def _optional_wire(values: Tensor | None) -> tensor_pb2.Tensor | None:
    return None if values is None else decoding.wire(values)


def _outputs(generator: Generator, latents: Tensor) -> Tensor:
    with torch.no_grad():
        return generator(latents)
