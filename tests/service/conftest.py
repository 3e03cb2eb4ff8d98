"""A real server on port 0 (built-in zoo), a raw generated stub, and helpers to call it and to report figures."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from gendebias.service.config import ServiceConfig
from gendebias.service.testing import running_server_state
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc
from gendebias.wire import to_tensor


@pytest.fixture(scope="module")
def served():
    with running_server_state(ServiceConfig(metrics_port=0, max_n=1000, max_proposals=20_000,
                                            max_latents=400_000)) as (target, running):
        yield target, running


@pytest.fixture(scope="module")
def stub(served):
    target, _ = served
    with grpc.insecure_channel(target) as channel:
        yield pb_grpc.DebiasServiceStub(channel)


def volumes_request(generator_id, latents, **options):
    return pb.ComputeLogVolumesRequest(generator_id=generator_id, latents=to_tensor(np.asarray(latents)), **options)


def error_reason(error: grpc.RpcError) -> tuple[str, str]:
    """``(reason, field)`` of the ErrorInfo a status carries."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    assert status is not None, f"no rich status on {error.code()}: {error.details()}"
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.domain == "gendebias"
    return info.reason, info.metadata.get("field", "")


def reported(section: str, figures: dict) -> None:
    """Print ``figures`` and, with ``GENDEBIAS_RELIABILITY_OUT=<file>`` set, merge them into that JSON file under
    ``section`` (docs/reliability.md is written from it; several modules add their sections to one file)."""
    print(f"{section}: {json.dumps(figures)}")
    path = os.environ.get("GENDEBIAS_RELIABILITY_OUT")
    if not path:
        return
    file = Path(path)
    report = json.loads(file.read_text()) if file.exists() and file.stat().st_size else {}
    report[section] = figures
    file.write_text(json.dumps(report, indent=2))


def computed(running, generator_id: str) -> float:
    """Latents whose log-volume the server has computed for ``generator_id`` (its Prometheus counter)."""
    value = running.servicer.metrics.registry.get_sample_value("gendebias_latents_total",
                                                               {"generator_id": generator_id})
    return value or 0.0


def settled(value, *, quiet: float = 1.0, seconds: float = 30.0) -> float:
    """Poll ``value()`` until it has not changed for ``quiet`` seconds (at most ``seconds``); its last value."""
    last, since, stop = value(), time.monotonic(), time.monotonic() + seconds
    while time.monotonic() - since < quiet and time.monotonic() < stop:
        time.sleep(0.05)
        if value() != last:
            last, since = value(), time.monotonic()
    return last


def cpu_share(seconds: float = 1.0) -> float:
    """CPU seconds this process (server and client threads together) spends per wall second over ``seconds``."""
    started, wall = time.process_time(), time.monotonic()
    time.sleep(seconds)
    return (time.process_time() - started) / (time.monotonic() - wall)


def background(call):
    """Consume a response stream on a thread, keeping its final status code."""
    outcome = {}

    def consume():
        try:
            for _ in call:
                pass
            outcome["code"] = grpc.StatusCode.OK
        except grpc.RpcError as error:
            outcome["code"] = error.code()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    return thread, outcome
