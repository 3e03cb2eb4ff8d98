"""gRPC errors back into the one exception hierarchy (:mod:`gendebias.errors`), for both clients.

The server sends every error as a ``google.rpc.Status`` (in the ``grpc-status-details-bin`` trailing metadata) with
one ``google.rpc.ErrorInfo``: ``reason`` is an ``ErrorReason`` enum name, domain ``gendebias``, and
``metadata["field"]`` names the argument at fault. The reason picks the class; without one (a proxy, the channel
itself, a deadline) the status code does: ``DEADLINE_EXCEEDED`` -> ``DeadlineExceededError``, ``UNAVAILABLE`` ->
``ServiceUnavailableError``, anything unknown -> ``InternalError``. No ``grpc.RpcError`` reaches the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from gendebias.errors import GendebiasError, error_for_reason

DOMAIN = "gendebias"


def error_from_rpc(error: grpc.RpcError, *, target: str | None = None) -> GendebiasError:
    """The ``GendebiasError`` carried by a failed call (``grpc.RpcError`` or ``grpc.aio.AioRpcError``).

    An error the server did not describe (no ``ErrorInfo``: the channel, a proxy, a deadline) names ``target``.
    """
    call: Any = error  # both kinds of failed call expose code(), details() and trailing_metadata()
    code = call.code() if callable(getattr(call, "code", None)) else None
    code_name = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
    details = call.details() if callable(getattr(call, "details", None)) else None
    message = details or f"the call failed with status {code_name}"
    reason, field = None, None
    status = _rich_status(call)
    if status is not None:
        message = status.message or message
        reason, field = _error_info(status)
    if reason is None and target is not None:
        message = f"server {target}: {message}"
    return error_for_reason(reason, code_name)(message, field=field)


@contextmanager
def translated_errors(target: str | None = None) -> Iterator[None]:
    """Re-raise any ``grpc.RpcError`` inside the block as its ``GendebiasError`` (works around awaits too)."""
    try:
        yield
    except grpc.RpcError as error:
        raise error_from_rpc(error, target=target) from None


def _rich_status(call: Any) -> status_pb2.Status | None:
    if not callable(getattr(call, "trailing_metadata", None)):
        return None
    try:
        return rpc_status.from_call(call)
    except ValueError:  # code or message disagree with the rich status: trust neither, fall back on the code
        return None


def _error_info(status: status_pb2.Status) -> tuple[str | None, str | None]:
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain and info.domain != DOMAIN:
                continue
            return info.reason or None, info.metadata.get("field") or None
    return None, None
