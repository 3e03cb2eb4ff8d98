"""The one exception hierarchy of gendebias and its wire mapping (``docs/design.md#errors``).

Every class subclasses :class:`GendebiasError` and the builtin it behaves like, so callers that catch ``ValueError``
keep working. Each class names its gRPC status ``code`` and its ``reason`` (a value of the ``ErrorReason`` enum of
``proto/gendebias/v1/errors.proto``, without the ``ERROR_REASON_`` prefix): the service turns a raised error into
that status with a ``google.rpc.ErrorInfo``, and the SDK turns the reason back into the same class with
:func:`error_for_reason`. This table is the only place the mapping is written. Nothing here imports torch or grpc.
"""

from __future__ import annotations

ECHO_CHARS = 64  # how much of a caller's string an error message repeats


def shown(value: object, limit: int = ECHO_CHARS) -> str:
    """``repr(value)`` cut to its first ``limit`` characters (then "…"), for echoing what a caller sent: a message
    that repeats a 12,000-character id would not fit a status trailer (16 KiB) and would lose its status code."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


class GendebiasError(Exception):
    """Base class of every error gendebias raises on purpose."""

    code = "INTERNAL"
    reason = "INTERNAL"

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidArgumentError(GendebiasError, ValueError):
    """An argument has the wrong value, shape or type; the message says how to fix the call."""

    code, reason = "INVALID_ARGUMENT", "INVALID_ARGUMENT"


class InvalidTensorError(InvalidArgumentError):
    """A wire tensor is malformed: dtype, shape, byte length or element count."""

    code, reason = "INVALID_ARGUMENT", "INVALID_TENSOR"


class InvalidLatentsError(InvalidArgumentError):
    """Latents have the wrong latent shape, or NaN/infinite values."""

    code, reason = "INVALID_ARGUMENT", "INVALID_LATENTS"


class LimitExceededError(InvalidArgumentError):
    """A request asks for more than the server's configured limits (latents, n, proposals, bytes)."""

    code, reason = "INVALID_ARGUMENT", "LIMIT_EXCEEDED"


class UnknownGeneratorError(GendebiasError, LookupError):
    """No generator is registered under the requested id, or a source path does not exist."""

    code, reason = "NOT_FOUND", "UNKNOWN_GENERATOR"


class GeneratorModeError(GendebiasError, ValueError):
    """The generator is in a state the maths cannot use (e.g. batch norm in training mode, unfrozen noise)."""

    code, reason = "FAILED_PRECONDITION", "GENERATOR_MODE"


class GeneratorSpecError(GendebiasError, ValueError):
    """A generator spec is malformed or its files (factory, weights, TorchScript, diffusers folder) do not load."""

    code, reason = "FAILED_PRECONDITION", "GENERATOR_SPEC"


class NumericalError(GendebiasError, ArithmeticError):
    """The generator produced non-finite outputs or Jacobians for some latents."""

    code, reason = "FAILED_PRECONDITION", "NUMERICAL"


class DegenerateWeightsError(GendebiasError, ValueError):
    """No latent carries positive weight, or the weights cannot be normalised."""

    code, reason = "FAILED_PRECONDITION", "DEGENERATE_WEIGHTS"


class QueueFullError(GendebiasError, RuntimeError):
    """The server's work queue is full; retry later with backoff."""

    code, reason = "RESOURCE_EXHAUSTED", "QUEUE_FULL"


class AuthenticationError(GendebiasError, PermissionError):
    """The request carries no valid bearer token."""

    code, reason = "UNAUTHENTICATED", "UNAUTHENTICATED"


class UnsupportedError(GendebiasError, NotImplementedError):
    """The requested option exists in the contract but this server does not implement it yet."""

    code, reason = "UNIMPLEMENTED", "UNSUPPORTED"


class DeadlineExceededError(GendebiasError, TimeoutError):
    """The call's deadline passed before the server answered (raised by the SDK)."""

    code, reason = "DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED"


class ServiceUnavailableError(GendebiasError, ConnectionError):
    """The server cannot be reached or is shutting down (raised by the SDK)."""

    code, reason = "UNAVAILABLE", "UNAVAILABLE"


class InternalError(GendebiasError, RuntimeError):
    """An unexpected server failure; the server logs the details, the wire carries none."""

    code, reason = "INTERNAL", "INTERNAL"


class DeviceMemoryError(GendebiasError, MemoryError):
    """Not even one latent with one tangent fits in device memory (after halving the chunk plan down to 1 x 1)."""

    code, reason = "RESOURCE_EXHAUSTED", "DEVICE_MEMORY"


ERRORS: tuple[type[GendebiasError], ...] = (
    InvalidArgumentError, InvalidTensorError, InvalidLatentsError, LimitExceededError, UnknownGeneratorError,
    GeneratorModeError, GeneratorSpecError, NumericalError, DegenerateWeightsError, QueueFullError,
    AuthenticationError, UnsupportedError, DeadlineExceededError, ServiceUnavailableError, InternalError,
    DeviceMemoryError,
)
_BY_REASON = {error.reason: error for error in ERRORS}
_BY_CODE = {error.code: error for error in reversed(ERRORS)}  # the most general class for each code


def error_for_reason(reason: str | None, code: str) -> type[GendebiasError]:
    """The class for an ``ErrorInfo`` reason, else the most general class for the gRPC status ``code`` name."""
    if reason and reason.removeprefix("ERROR_REASON_") in _BY_REASON:
        return _BY_REASON[reason.removeprefix("ERROR_REASON_")]
    return _BY_CODE.get(code, InternalError)
