"""Channel settings shared by ``Client`` and ``AsyncClient``: credentials, retry policy, per-call metadata.

Retries are safe because every RPC of ``gendebias.v1.DebiasService`` (and the health check) is side-effect free:
it reads latents and returns numbers, it stores nothing, and ``Resample`` with the same seed returns the same
latents. The policy retries only ``UNAVAILABLE`` (server unreachable or shutting down: the request was not
served), at most 3 attempts with exponential backoff. Other codes (a deadline, a full queue, invalid arguments)
are returned to the caller at once. gRPC replays a streamed request only while it still holds the messages it
sent (its retry buffer); a large stream that fails later is reported rather than retried.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

SERVICE = "gendebias.v1.DebiasService"
HEALTH_SERVICE = "grpc.health.v1.Health"

RETRY_POLICY = {
    "maxAttempts": 3,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
SERVICE_CONFIG = json.dumps({
    "methodConfig": [{"name": [{"service": SERVICE}, {"service": HEALTH_SERVICE}], "retryPolicy": RETRY_POLICY}],
})


def channel_options() -> list[tuple[str, str | int]]:
    """gRPC channel arguments: retries on, with :data:`SERVICE_CONFIG` (the 4 MiB message limit is kept)."""
    return [("grpc.enable_retries", 1), ("grpc.service_config", SERVICE_CONFIG)]


def credentials(root_certificates: bytes | None) -> grpc.ChannelCredentials | None:
    """TLS credentials trusting ``root_certificates`` (PEM), or None for an insecure (plaintext) channel."""
    if root_certificates is None:
        return None
    return grpc.ssl_channel_credentials(root_certificates=root_certificates)


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """Metadata sent with every call: ``authorization: Bearer <token>`` when a token is set."""
    return () if token is None else (("authorization", f"Bearer {token}"),)


def health_check(channel: grpc.Channel | grpc.aio.Channel) -> tuple[Any, Any]:
    """``(Check, request)``: the ``grpc.health.v1`` Check method bound to ``channel`` and a request for service ``""``
    (the whole server). Needs ``grpcio-health-checking``; says how to install it when it is missing."""
    try:
        from grpc_health.v1 import health_pb2, health_pb2_grpc
    except ImportError as error:
        raise ModuleNotFoundError(
            "health() needs the grpcio-health-checking package: pip install 'gendebias[server]'"
        ) from error
    return health_pb2_grpc.HealthStub(channel).Check, health_pb2.HealthCheckRequest(service="")


def serving_status(response: Any) -> str:
    """The name of a ``HealthCheckResponse``'s status: ``"SERVING"``, ``"NOT_SERVING"``, ``"UNKNOWN"``, ..."""
    return str(type(response).ServingStatus.Name(response.status))
