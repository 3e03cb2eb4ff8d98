"""Requests and responses of ``gendebias.v1.DebiasService``, shared by ``Client`` and ``AsyncClient``.

Both clients validate arguments and build request messages with the ``*_requests`` / ``*_request`` functions, and
rebuild results by feeding every streamed response to an assembler (``add(response)`` then ``result()``); only the
transport (blocking or ``grpc.aio``) differs between them.

Latents travel in chunks of at most :data:`CHUNK_BYTES` of tensor data per message (at least one latent each), so
a request of any size stays under gRPC's default 4 MiB message limit. Options that the contract marks "first
message only" are set on the first message. Validation here catches mistakes the server could only report
vaguely (a misspelt scheme, a single latent without its batch axis); the server stays the authority on limits.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np

from gendebias.clients.results import GeneratorInfo, LogVolumes, Resampled, ResampleProgress, Reweighted
from gendebias.errors import GendebiasError, InternalError, InvalidArgumentError, InvalidLatentsError
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import tensor_pb2
from gendebias.wire import from_tensor, to_tensor

CHUNK_BYTES = 1 << 20
"""Tensor data bytes per streamed request message (1 MiB)."""


def _choices(enum: Any, prefix: str) -> dict[str, int]:
    return {name.removeprefix(prefix).lower(): value for name, value in enum.items() if value != 0}


TARGET_CODES = _choices(pb.Target, "TARGET_")
SCHEME_CODES = _choices(pb.Scheme, "SCHEME_")
SAMPLER_CODES = _choices(pb.Sampler, "SAMPLER_")
METHOD_CODES = _choices(pb.Method, "METHOD_")
PRECISION_CODES = _choices(pb.Precision, "PRECISION_")
TARGETS = tuple(TARGET_CODES)
"""``("tilted", "uniform", "balanced")``: where the target density is defined (docs/design.md#targets-and-rho;
``balanced`` needs a generator with a classifier, docs/samplers.md)."""
SCHEMES = tuple(SCHEME_CODES)
"""``("multinomial", "systematic", "without_replacement", "rejection")``: how indices are drawn from the pool."""
SAMPLERS = tuple(SAMPLER_CODES)
"""``("sir", "smc", "mcmc")``: the samplers of the contract (a server may serve only some; see UnsupportedError)."""
MAX_SEED = 2**64 - 1


# --- requests -------------------------------------------------------------------------------------------------


def generator_request(generator_id: str) -> pb.GetGeneratorRequest:
    return pb.GetGeneratorRequest(generator_id=_generator_id(generator_id))


def log_volumes_requests(generator_id: str, latents: Any, *, top_k: int | None, singular_values: bool,
                         tile_codes: bool, label: int | None, method: str = "exact", precision: str = "fp32",
                         power_iterations: int | None = None, projection_dim: int | None = None,
                         seed: int | None = None) -> tuple[int, Iterator[pb.ComputeLogVolumesRequest]]:
    """``(N, messages)`` of a ``ComputeLogVolumes`` stream; arguments are checked now, messages built lazily."""
    first = pb.ComputeLogVolumesRequest(generator_id=_generator_id(generator_id), top_k=_top_k(top_k),
                                        return_singular_values=bool(singular_values),
                                        return_tile_codes=bool(tile_codes),
                                        method=_choice("method", method, METHOD_CODES),
                                        precision=_choice("precision", precision, PRECISION_CODES))
    if method == "randomized" and top_k is None:
        raise InvalidArgumentError("method 'randomized' estimates the top_k largest singular values; pass top_k",
                                   field="top_k")
    for name, value in (("label", label), ("power_iterations", power_iterations),
                        ("projection_dim", projection_dim)):
        if value is not None:
            setattr(first, name, _integer(name, value))
    if seed is not None:
        first.seed = _seed(seed)
    array = check_latents(latents)

    def messages() -> Iterator[pb.ComputeLogVolumesRequest]:
        for index, (start, stop) in enumerate(chunk_bounds(array)):
            message = pb.ComputeLogVolumesRequest()
            if index == 0:
                message.CopyFrom(first)
            message.latents.CopyFrom(to_tensor(array[start:stop]))
            yield message

    return array.shape[0], messages()


def reweight_requests(generator_id: str, latents: Any, *, rho: float, target: str, top_k: int | None,
                      label: int | None, log_proposal: Any | None) -> tuple[int, Iterator[pb.ReweightRequest]]:
    """``(N, messages)`` of a ``Reweight`` stream; ``log_proposal`` ``(N,)`` travels aligned with the latents."""
    first = pb.ReweightRequest(generator_id=_generator_id(generator_id), rho=_real("rho", rho),
                               target=_choice("target", target, TARGET_CODES), top_k=_top_k(top_k))
    if label is not None:
        first.label = _integer("label", label)
    array = check_latents(latents)
    proposal = None if log_proposal is None else _log_proposal(log_proposal, array.shape[0])

    def messages() -> Iterator[pb.ReweightRequest]:
        extra = 0 if proposal is None else proposal.itemsize
        for index, (start, stop) in enumerate(chunk_bounds(array, extra_row_bytes=extra)):
            message = pb.ReweightRequest()
            if index == 0:
                message.CopyFrom(first)
            message.latents.CopyFrom(to_tensor(array[start:stop]))
            if proposal is not None:
                message.log_proposal.CopyFrom(to_tensor(proposal[start:stop]))
            yield message

    return array.shape[0], messages()


def resample_request(generator_id: str, n: int, *, rho: float, target: str, proposals: int | None,
                     oversampling: float | None, scheme: str, sampler: str, seed: int | None, label: int | None,
                     top_k: int | None, return_outputs: bool, max_evaluations: int | None = None,
                     particles: int | None = None, stream_progress: bool = False) -> pb.ResampleRequest:
    request = pb.ResampleRequest(generator_id=_generator_id(generator_id), n=_integer("n", n), rho=_real("rho", rho),
                                 target=_choice("target", target, TARGET_CODES),
                                 scheme=_choice("scheme", scheme, SCHEME_CODES),
                                 sampler=_choice("sampler", sampler, SAMPLER_CODES), top_k=_top_k(top_k),
                                 return_outputs=bool(return_outputs), stream_progress=stream_progress)
    if proposals is not None:
        request.proposals = _positive("proposals", proposals, meaning="proposals=None lets the server pick")
    if oversampling is not None:
        request.oversampling = _real("oversampling", oversampling)
    if max_evaluations is not None:
        request.max_evaluations = _positive("max_evaluations", max_evaluations,
                                            meaning="max_evaluations=None uses the server's limit")
    if particles is not None:
        request.particles = _positive("particles", particles, meaning="particles=None lets the server pick")
    if seed is not None:
        request.seed = _seed(seed)
    if label is not None:
        request.label = _integer("label", label)
    return request


def check_latents(latents: Any) -> np.ndarray:
    """``latents`` as a float32/float64 array of shape ``(N, *latent_shape)``, ``N >= 1`` (integers become float64)."""
    array = np.asarray(latents)
    if array.ndim < 2:
        raise InvalidLatentsError(
            f"latents must have shape (N, *latent_shape), got shape {array.shape}; "
            "for a single latent z pass z[None]", field="latents")
    if array.shape[0] == 0 or array.size == 0:
        raise InvalidLatentsError(f"latents of shape {array.shape} hold no values; pass at least one latent",
                                  field="latents")
    if array.dtype.kind in "iu" or (array.dtype.kind == "f" and array.dtype.itemsize not in (4, 8)):
        array = array.astype(np.float64)
    elif array.dtype.kind != "f":
        raise InvalidLatentsError(f"latents must be a float32 or float64 array, got dtype {array.dtype}",
                                  field="latents")
    return array


def chunk_bounds(array: np.ndarray, *, extra_row_bytes: int = 0) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` row ranges of at most :data:`CHUNK_BYTES` each (at least one row per range)."""
    row_bytes = math.prod(array.shape[1:]) * array.dtype.itemsize + extra_row_bytes
    rows = max(1, CHUNK_BYTES // max(1, row_bytes))
    for start in range(0, array.shape[0], rows):
        yield start, min(start + rows, array.shape[0])


# --- responses ------------------------------------------------------------------------------------------------


def generator_info(message: pb.GeneratorInfo) -> GeneratorInfo:
    return GeneratorInfo(
        generator_id=message.generator_id, description=message.description, kind=message.kind,
        latent_shape=tuple(message.latent_shape), output_shape=tuple(message.output_shape), prior=message.prior,
        prior_parameters=dict(message.prior_parameters), piecewise_affine=message.piecewise_affine,
        smooth_operations=tuple(message.smooth_operations), classes=message.classes or None,
        frozen_noise=message.frozen_noise,
        dtype=tensor_pb2.DataType.Name(message.dtype).removeprefix("DATA_TYPE_").lower(),
    )


class _Chunks:
    """Concatenates arrays streamed in chunks, checking that each chunk starts where the last one stopped."""

    def __init__(self, expected: int | None = None) -> None:
        self.expected = expected
        self.count = 0
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, offset: int, arrays: Mapping[str, Any]) -> None:
        if offset != self.count:
            raise InternalError(f"the server sent a chunk at offset {offset}, expected {self.count}")
        lengths = set()
        for name, tensor in arrays.items():
            if tensor is not None:
                array = _decode(tensor, name)
                self.parts.setdefault(name, []).append(array)
                lengths.add(array.shape[0] if array.ndim else -1)
        if len(lengths) != 1 or -1 in lengths:
            raise InternalError(f"the server sent a chunk whose arrays disagree in length: {sorted(lengths)}")
        self.count += lengths.pop()

    def array(self, name: str, *, dtype: str = "<f8") -> np.ndarray:
        parts = self.parts.get(name)
        if not parts:
            return np.empty(0, dtype=dtype)
        return np.concatenate(parts)

    def optional(self, name: str) -> np.ndarray | None:
        return np.concatenate(self.parts[name]) if self.parts.get(name) else None

    def check_count(self) -> None:
        if self.expected is not None and self.count != self.expected:
            raise InternalError(f"the server answered {self.count} values for {self.expected} latents")


class LogVolumesAssembler:
    """Rebuilds a :class:`LogVolumes` from a ``ComputeLogVolumes`` response stream."""

    def __init__(self, expected: int) -> None:
        self.chunks = _Chunks(expected)

    def add(self, response: pb.ComputeLogVolumesResponse) -> None:
        self.chunks.add(response.offset, {
            "log_volumes": response.log_volumes,
            "singular_values": _present(response, "singular_values"),
            "tile_codes": _present(response, "tile_codes"),
            "errors": _present(response, "errors"),
        })
        self.ran = (_name(response.method, METHOD_CODES, "exact"), _name(response.precision, PRECISION_CODES, "fp32"),
                    response.products)

    def result(self) -> LogVolumes:
        self.chunks.check_count()
        method, precision, products = getattr(self, "ran", ("exact", "fp32", 0))
        return LogVolumes(log_volumes=self.chunks.array("log_volumes"),
                          singular_values=self.chunks.optional("singular_values"),
                          tile_codes=self.chunks.optional("tile_codes"), errors=self.chunks.optional("errors"),
                          method=method, precision=precision, products=products)


class ReweightAssembler:
    """Rebuilds a :class:`Reweighted` from a ``Reweight`` response stream (chunks, then one summary)."""

    def __init__(self, expected: int) -> None:
        self.chunks = _Chunks(expected)
        self.summary: pb.ReweightSummary | None = None

    def add(self, response: pb.ReweightResponse) -> None:
        if response.WhichOneof("result") == "summary":
            self.summary = response.summary
        elif response.WhichOneof("result") == "chunk":
            chunk = response.chunk
            self.chunks.add(chunk.offset, {"log_weights": chunk.log_weights, "log_volumes": chunk.log_volumes})

    def result(self) -> Reweighted:
        self.chunks.check_count()
        if self.summary is None:
            raise InternalError("the server's Reweight stream ended without its summary")
        return Reweighted(log_weights=self.chunks.array("log_weights"), log_volumes=self.chunks.array("log_volumes"),
                          ess=self.summary.ess, max_weight=self.summary.max_weight)


class ResampleAssembler:
    """Rebuilds a :class:`Resampled` from a ``Resample`` response stream (chunks, then one summary)."""

    def __init__(self, progress: Callable[[ResampleProgress], None] | None = None) -> None:
        self.chunks = _Chunks()
        self.summary: pb.ResampleSummary | None = None
        self.progress = progress

    def add(self, response: pb.ResampleResponse) -> None:
        if response.WhichOneof("result") == "progress":
            if self.progress is not None:
                message = response.progress
                self.progress(ResampleProgress(_name(message.sampler, SAMPLER_CODES, "auto"), message.beta,
                                               message.evaluations, message.step, message.seconds))
        elif response.WhichOneof("result") == "summary":
            self.summary = response.summary
        elif response.WhichOneof("result") == "chunk":
            chunk = response.chunk
            fields = {"latents": chunk.latents, **{name: _present(chunk, name)
                                                   for name in ("log_weights", "indices", "outputs")}}
            self.chunks.add(chunk.offset, fields)

    def result(self) -> Resampled:
        summary = self.summary
        if summary is None:
            raise InternalError("the server's Resample stream ended without its summary")
        self.chunks.expected = summary.n
        self.chunks.check_count()
        sir = summary.sampler == pb.SAMPLER_SIR
        result = Resampled(
            latents=self.chunks.array("latents"),
            log_weights=self.chunks.array("log_weights") if sir else None,
            indices=self.chunks.array("indices", dtype="<i8") if sir else None, outputs=self.chunks.optional("outputs"),
            ess=summary.ess, max_weight=summary.max_weight, distinct=summary.distinct, proposals=summary.proposals,
            evaluations=summary.evaluations, scheme=_name(summary.scheme, SCHEME_CODES, "multinomial"),
            sampler=_name(summary.sampler, SAMPLER_CODES, "auto"), seed=summary.seed,
            acceptance_rate=summary.acceptance_rate, stopped=summary.stopped or "done",
            beta=summary.beta, choice=summary.choice, warnings=tuple(summary.warnings), pool_ess=summary.pool_ess,
            diagnostics={"schedule": list(summary.schedule), "ess_history": list(summary.ess_history),
                         "acceptance_rates": list(summary.acceptance_rates),
                         "log_normalizer": summary.log_normalizer,
                         "autocorrelation_ess": summary.autocorrelation_ess},
        )
        for message in result.warnings:
            warnings.warn(f"Resample: {message}", UserWarning, stacklevel=4)
        return result


# --- helpers --------------------------------------------------------------------------------------------------


def _decode(tensor: tensor_pb2.Tensor, name: str) -> np.ndarray:
    try:
        return from_tensor(tensor, field=name)
    except GendebiasError as error:  # a malformed answer is the server's fault, not the caller's argument
        raise InternalError(f"the server sent a malformed {name} tensor: {error}") from None


def _present(message: Any, name: str) -> tensor_pb2.Tensor | None:
    return getattr(message, name) if message.HasField(name) else None


def _name(value: int, choices: Mapping[str, int], default: str) -> str:
    return next((name for name, code in choices.items() if code == value), default)


def _choice(name: str, value: str, choices: Mapping[str, int]) -> int:
    if value not in choices:
        raise InvalidArgumentError(f"unknown {name} {value!r}; choose one of {list(choices)}", field=name)
    return choices[value]


def _generator_id(generator_id: str) -> str:
    if not isinstance(generator_id, str) or not generator_id:
        raise InvalidArgumentError(f"generator_id must be a non-empty string, got {generator_id!r}; "
                                   "list_generators() shows the served ids", field="generator_id")
    return generator_id


def _seed(value: Any) -> int:
    seed = _integer("seed", value)
    if not 0 <= seed <= MAX_SEED:
        raise InvalidArgumentError(f"seed must be an int in [0, 2**64), got {seed}", field="seed")
    return seed


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidArgumentError(f"{name} must be an int, got {value!r}", field=name)
    return int(value)


def _positive(name: str, value: Any, *, meaning: str) -> int:
    value = _integer(name, value)
    if value < 1:
        raise InvalidArgumentError(f"{name} must be a positive int, got {value} ({meaning})", field=name)
    return value


def _top_k(top_k: int | None) -> int:
    """``top_k`` on the wire, where 0 means "all singular values"."""
    return 0 if top_k is None else _positive("top_k", top_k, meaning="top_k=None keeps all singular values")


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}", field=name)
    return float(value)


def _log_proposal(log_proposal: Any, count: int) -> np.ndarray:
    array = np.asarray(log_proposal)
    if array.shape != (count,) or array.dtype.kind not in "fiu":
        raise InvalidArgumentError(f"log_proposal must be a real array of shape ({count},) aligned with the latents, "
                                   f"got {array.dtype} {array.shape}", field="log_proposal")
    return array.astype(np.float64, copy=False)
