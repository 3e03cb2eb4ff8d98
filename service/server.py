"""The gRPC server: ``create_server(address, config) -> (server, port)`` and the blocking ``serve(config)``.

Always on: standard ``grpc.health.v1`` health (SERVING once the generators are loaded, NOT_SERVING during
shutdown) and server reflection. Optional: bearer-token auth, TLS, Prometheus metrics on their own HTTP port.
``serve`` shuts down gracefully on SIGTERM/SIGINT: health turns NOT_SERVING, in-flight RPCs get
``grace_seconds`` to finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import grpc
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from gendebias.errors import InvalidArgumentError
from gendebias.generators import Generator, load_registry, resolve_device
from gendebias.service.auth import BearerTokenInterceptor
from gendebias.service.batching import BatchingEngine
from gendebias.service.config import ServiceConfig
from gendebias.service.metrics import Metrics
from gendebias.service.servicer import DebiasServicer, add_to_server
from gendebias.v1 import debias_service_pb2

SERVICE_NAME = debias_service_pb2.DESCRIPTOR.services_by_name["DebiasService"].full_name
log = logging.getLogger(__name__)


@dataclass
class Running:
    """A started server and the parts a caller may need to inspect or stop."""

    server: grpc.aio.Server
    port: int
    servicer: DebiasServicer
    health: HealthServicer
    engine: BatchingEngine
    metrics: Metrics
    metrics_port: int | None

    async def stop(self, grace: float | None = None) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.engine.stop()


def device_for(config: ServiceConfig) -> torch.device:
    return resolve_device(config.device)


def load_generators(config: ServiceConfig) -> dict[str, Generator]:
    """Every generator of the configured registry, built now (a broken spec fails at start, not at first call)."""
    registry = load_registry(config.registry)
    device = device_for(config)
    return {id: registry[id].to(device) for id in registry}


async def start_server(address: str, config: ServiceConfig,
                       generators: dict[str, Generator] | None = None) -> Running:
    """Build, bind and start a server on ``address`` (``"127.0.0.1:0"`` picks a free port)."""
    generators = load_generators(config) if generators is None else generators
    metrics = Metrics()
    engine = BatchingEngine(max_batch=config.max_batch, max_delay=config.max_delay_ms / 1000,
                            queue_size=config.queue_size, metrics=metrics)
    interceptors = [BearerTokenInterceptor(config.token, metrics)] if config.token else []
    server = grpc.aio.server(interceptors=interceptors)
    servicer = DebiasServicer(generators, engine, config, metrics)
    add_to_server(servicer, server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection((SERVICE_NAME, reflection.SERVICE_NAME, "grpc.health.v1.Health"), server)
    port = _bind(server, address, config)
    engine.start()
    await server.start()
    for service in ("", SERVICE_NAME):
        await health.set(service, health_pb2.HealthCheckResponse.SERVING)
    metrics_port = metrics.serve(config.metrics_port) if config.metrics_port is not None else None
    return Running(server, port, servicer, health, engine, metrics, metrics_port)


async def create_server(address: str, config: ServiceConfig) -> tuple[grpc.aio.Server, int]:
    """Start a server on ``address`` and return it with its bound port (port 0 picks a free one, as the tests do)."""
    running = await start_server(address, config)
    return running.server, running.port


def _bind(server: grpc.aio.Server, address: str, config: ServiceConfig) -> int:
    """Listen on ``address``: TLS only when ``tls_cert`` and ``tls_key`` are set (the port then refuses plaintext)."""
    if config.tls_cert and config.tls_key:
        credentials = grpc.ssl_server_credentials([(_pem(config.tls_key, "tls_key"),
                                                    _pem(config.tls_cert, "tls_cert"))])
        return server.add_secure_port(address, credentials)
    return server.add_insecure_port(address)


def _pem(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise InvalidArgumentError(f"cannot read {setting} {path}: {type(error).__name__}") from None


def serve(config: ServiceConfig) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(config))


async def _serve(config: ServiceConfig) -> None:
    running = await start_server(f"{config.host}:{config.port}", config)
    log.info("serving %d generators on port %d (metrics: %s)", len(running.servicer.generators), running.port,
             running.metrics_port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("shutting down: NOT_SERVING, %.0f s grace", config.grace_seconds)
    await running.stop(config.grace_seconds)
