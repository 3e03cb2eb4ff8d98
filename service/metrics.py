"""Prometheus metrics of one server: requests, latencies, latents/s, batch sizes, queue depth, errors by reason.

Each server owns its own ``CollectorRegistry`` (several servers can run in one process, as in the tests) and serves
it on a separate HTTP port when ``metrics_port`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter("gendebias_requests", "RPCs finished, by method and status code",
                                ["method", "code"], registry=self.registry)
        self.latency = Histogram("gendebias_request_seconds", "RPC latency", ["method"], registry=self.registry)
        self.latents = Counter("gendebias_latents", "Latents whose log-volume was computed", ["generator_id"],
                               registry=self.registry)
        self.batch_size = Histogram("gendebias_batch_latents", "Latents per Jacobian batch on the device",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.batch_jobs = Histogram("gendebias_batch_jobs", "Request pieces merged into one Jacobian batch",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("gendebias_queue_depth", "Jobs waiting for the device", registry=self.registry)
        self.errors = Counter("gendebias_errors", "Errors returned, by ErrorReason", ["reason"],
                              registry=self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` over HTTP; returns the bound port (``port=0`` picks a free one)."""
        httpd, _ = start_http_server(port, addr=host, registry=self.registry)
        return int(httpd.server_port)
