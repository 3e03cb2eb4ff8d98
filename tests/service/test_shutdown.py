"""A real ``serve`` process and SIGTERM: health turns NOT_SERVING by the server's own doing, calls in flight finish
within the grace period, and the process exits 0."""

import os
import queue
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import grpc
import numpy as np
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gendebias.generators import load_generator
from gendebias.geometry import log_volume
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc
from gendebias.wire import from_tensor

from .conftest import volumes_request

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


@contextmanager
def served_process(grace_seconds):
    """``(process, channel)``: ``gendebias serve``'s code path in a subprocess, SERVING on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GENDEBIAS_PORT": str(port), "GENDEBIAS_HOST": "127.0.0.1",
           "GENDEBIAS_GRACE_SECONDS": str(grace_seconds)}
    code = "from gendebias.service.config import resolve_config; from gendebias.service.server import serve; " \
           "serve(resolve_config())"
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=120)
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 60
            while health.Check(health_pb2.HealthCheckRequest()).status != SERVING and time.monotonic() < deadline:
                time.sleep(0.1)
            yield process, channel
    finally:
        process.kill()
        process.wait()


def test_serve_shuts_down_gracefully_on_sigterm():
    with served_process(grace_seconds=1) as (process, _):
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "shutting down" in process.stderr.read()


def test_health_is_not_serving_during_shutdown():
    """A health Watch opened while SERVING hears NOT_SERVING after SIGTERM, before the server goes away."""
    with served_process(grace_seconds=1) as (process, channel):
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60)
        assert next(watch).status == SERVING
        process.send_signal(signal.SIGTERM)
        assert next(watch).status == NOT_SERVING
        assert process.wait(timeout=30) == 0


def test_calls_in_flight_finish_within_the_grace_period():
    """A ComputeLogVolumes stream has its first message answered, then the server gets SIGTERM; the stream's
    next messages are still answered, correctly, and the call ends OK, well inside a 60 s grace period."""
    latents = np.random.default_rng(0).standard_normal((3, 64, 16)).astype(np.float32)
    expected = log_volume(load_generator("digits-gan"), torch.from_numpy(latents.reshape(-1, 16))).numpy()
    outgoing: queue.Queue = queue.Queue()

    def requests():
        while (message := outgoing.get()) is not None:
            yield message

    with served_process(grace_seconds=60) as (process, channel):
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=120)
        assert next(watch).status == SERVING
        responses = pb_grpc.DebiasServiceStub(channel).ComputeLogVolumes(requests(), timeout=120)
        outgoing.put(volumes_request("digits-gan", latents[0]))
        answered = [next(responses)]
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert next(watch).status == NOT_SERVING, "the server is shutting down while the call is in flight"
        watch.cancel()  # an open Watch is a call in flight too: it would hold the server for the whole grace
        for part in latents[1:]:
            outgoing.put(volumes_request("digits-gan", part))
        outgoing.put(None)
        answered += list(responses)
        assert responses.code() == grpc.StatusCode.OK
        assert [response.offset for response in answered] == [0, 64, 128]
        values = np.concatenate([from_tensor(response.log_volumes, field="log_volumes") for response in answered])
        np.testing.assert_array_equal(values, expected)
        assert process.wait(timeout=60) == 0
        assert time.monotonic() - signalled < 45, "the server stopped when its last call ended, not at the grace"
