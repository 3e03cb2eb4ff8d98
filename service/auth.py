"""Optional bearer-token authentication: ``authorization: Bearer <token>`` on every RPC but health and reflection."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from gendebias.errors import AuthenticationError
from gendebias.service.metrics import Metrics
from gendebias.service.status import rpc_status_for
from gendebias.v1 import debias_service_pb2

EXEMPT_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


SERVICE = debias_service_pb2.DESCRIPTOR.services_by_name["DebiasService"]
METHODS = {f"/{SERVICE.full_name}/{method.name}": method.name for method in SERVICE.methods}


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Compares ``authorization`` with ``Bearer <token>`` in constant time; counts each refusal in ``metrics`` by
    method (``unknown`` for a name this service does not have: a caller's string is never a label)."""

    def __init__(self, token: str, metrics: Metrics | None = None) -> None:
        self._expected = f"Bearer {token}".encode()
        self._metrics = metrics

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        if method.startswith(EXEMPT_PREFIXES):
            return await continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        given = str(metadata.get("authorization", "")).encode()
        if hmac.compare_digest(given, self._expected):
            return await continuation(handler_call_details)
        if self._metrics is not None:
            self._metrics.requests.labels(METHODS.get(method, "unknown"), AuthenticationError.code).inc()
            self._metrics.errors.labels(AuthenticationError.reason).inc()
        handler = await continuation(handler_call_details)
        return _rejecting(handler)


def _rejecting(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler:
    """A handler of ``handler``'s shape that answers UNAUTHENTICATED; for an unknown method (``None``) one that reads
    no request, so a caller without the token learns nothing about which methods exist."""
    status = rpc_status_for(AuthenticationError("this server needs 'authorization: Bearer <token>' metadata"))

    async def reject(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)

    async def reject_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)
        yield  # pragma: no cover - makes this an async generator

    if handler is None:
        return grpc.stream_stream_rpc_method_handler(reject_stream)
    factory = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    behaviour = reject_stream if handler.response_streaming else reject
    return factory(behaviour, request_deserializer=handler.request_deserializer,
                   response_serializer=handler.response_serializer)
