"""Errors on the wire: a ``GendebiasError`` becomes a ``google.rpc.Status`` with one ``ErrorInfo``.

The status code and reason come from the error class (the one table in :mod:`gendebias.errors`); ``ErrorInfo``
carries ``reason`` (the ``ErrorReason`` enum name), domain ``gendebias`` and ``metadata["field"]`` when one argument
is at fault. Unexpected exceptions become ``INTERNAL`` with a fixed message: the traceback goes to the log only.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gendebias.errors import GendebiasError, InternalError

DOMAIN = "gendebias"
MAX_MESSAGE_CHARS = 1024  # the message travels twice in the trailers (grpc-message and the details); 16 KiB in all
log = logging.getLogger(__name__)


def rpc_status_for(error: GendebiasError) -> grpc.Status:
    """The gRPC status (with details in trailing metadata) that carries ``error``."""
    info = error_details_pb2.ErrorInfo(reason=f"ERROR_REASON_{error.reason}", domain=DOMAIN)
    if error.field:
        info.metadata["field"] = error.field
    detail = any_pb2.Any()
    detail.Pack(info)
    message = str(error)
    if len(message) > MAX_MESSAGE_CHARS:  # a last guard: messages echo callers' strings through shown()
        message = f"{message[:MAX_MESSAGE_CHARS]}…"
    status = status_pb2.Status(code=getattr(code_pb2, error.code), message=message, details=[detail])
    return rpc_status.to_status(status)


def as_gendebias_error(error: BaseException) -> GendebiasError:
    """``error`` itself when it is one of ours, else a logged ``InternalError`` with no details."""
    if isinstance(error, GendebiasError):
        return error
    log.exception("unexpected failure while serving a request", exc_info=error)
    return InternalError("internal error; the server log has the details")


async def abort(context: grpc.aio.ServicerContext, error: BaseException) -> None:
    """End the RPC with the status for ``error`` (never returns)."""
    status = rpc_status_for(as_gendebias_error(error))
    await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)
