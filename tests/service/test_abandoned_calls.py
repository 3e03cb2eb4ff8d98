"""A streamed call whose client cancels, disappears (its process killed) or runs out of deadline stops its work: the
server's latents counter stops within a device batch or two, its CPU time goes flat, and it keeps serving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gendebias.service.config import ServiceConfig
from gendebias.service.testing import running_server_state
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc
from gendebias.wire import to_tensor

from .conftest import background, computed, cpu_share, reported, settled, volumes_request

LATENTS = 4096  # about 3 s of digits-gan log-volumes on 2 cores: long enough to abandon midway
BATCH = ServiceConfig().max_batch
IDLE_CPU = 0.15  # CPU seconds per second of a server with nothing to do (grpc's pollers), with room to spare
FLAT_WITHIN = 5.0  # seconds: one device batch of digits-gan takes about 0.2 s on 2 idle cores
FIGURES: dict[str, dict[str, float]] = {}
CLIENT = """
import sys, grpc, numpy as np
from gendebias.v1 import debias_service_pb2 as pb, debias_service_pb2_grpc as pb_grpc
from gendebias.wire import to_tensor
latents = np.random.default_rng(0).standard_normal(({count}, 16)).astype(np.float32)
request = pb.ComputeLogVolumesRequest(generator_id="digits-gan", latents=to_tensor(latents))
stub = pb_grpc.DebiasServiceStub(grpc.insecure_channel(sys.argv[1]))
print("sending", flush=True)
list(stub.ComputeLogVolumes(iter([request])))
"""


@pytest.fixture(scope="module")
def served():
    with running_server_state(ServiceConfig()) as (target, running):
        still_serving(target)  # the first computation imports torch's lazy modules: not part of any measurement
        yield target, running


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    if FIGURES:
        reported("abandoned calls", dict(sorted(FIGURES.items())))


def stream(stub, rpc, **options):
    """A ``ComputeLogVolumes`` or ``Reweight`` call for :func:`latents` on ``digits-gan``."""
    if rpc == "ComputeLogVolumes":
        return stub.ComputeLogVolumes(iter([volumes_request("digits-gan", latents())]), **options)
    return stub.Reweight(reweight_requests(latents()), **options)


def latents(count=LATENTS):
    return np.random.default_rng(0).standard_normal((count, 16)).astype(np.float32)


def reweight_requests(values, hold: threading.Event | None = None):
    """``values`` in two chunks; with ``hold``, the client stops after the first until ``hold`` is set (<= 20 s)."""
    half = values.shape[0] // 2
    yield pb.ReweightRequest(generator_id="digits-gan", latents=to_tensor(values[:half]))
    if hold is not None:
        hold.wait(20)
    yield pb.ReweightRequest(latents=to_tensor(values[half:]))


def wait_until(condition, seconds=60.0):
    stop = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < stop, "timed out"
        time.sleep(0.02)


def after_the_end(name, running, ended, at_end):
    """The work stopped: the process's CPU goes flat (under :data:`IDLE_CPU` over half a second) within
    :data:`FLAT_WITHIN` seconds of ``ended`` (a monotonic time), and at most two device batches of latents are
    computed after ``at_end`` (the batch on the device when the call ended finishes). Records the figures."""
    share = cpu_share(0.5)
    while share >= IDLE_CPU and time.monotonic() - ended < FLAT_WITHIN:
        share = cpu_share(0.5)
    flat_after = time.monotonic() - ended - 0.5
    last = settled(lambda: computed(running, "digits-gan"), quiet=0.5)
    FIGURES[name] = {"latents_after_end": last - at_end, "cpu_flat_after_s": round(flat_after, 2),
                     "cpu_share_then": round(share, 3)}
    assert share < IDLE_CPU, f"the server still uses {share:.2f} CPU seconds per second {FLAT_WITHIN} s later"
    assert last - at_end <= 2 * BATCH, f"{last - at_end:.0f} latents computed after the call ended"


def still_serving(target):
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
        stub = pb_grpc.DebiasServiceStub(channel)
        (answer,) = stub.ComputeLogVolumes(iter([volumes_request("digits-gan", latents(2))]), timeout=30)
    assert health == health_pb2.HealthCheckResponse.SERVING and list(answer.log_volumes.shape) == [2]


@pytest.mark.parametrize("rpc", ["ComputeLogVolumes", "Reweight"])
def test_a_cancelled_stream_stops_its_work(served, rpc):
    target, running = served
    start = computed(running, "digits-gan")
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DebiasServiceStub(channel)
        call = stream(stub, rpc)
        thread, outcome = background(call)
        wait_until(lambda: computed(running, "digits-gan") > start)
        call.cancel()
        ended, at_end = time.monotonic(), computed(running, "digits-gan")
        thread.join(10)
    assert outcome["code"] == grpc.StatusCode.CANCELLED
    assert at_end - start < LATENTS, "the call finished before it was cancelled: nothing was measured"
    after_the_end(f"{rpc}: client cancels while the server computes", running, ended, at_end)
    still_serving(target)


def test_a_reweight_cancelled_during_its_upload_stops(served):
    """grpc ends the server's request stream when its client cancels mid-upload as if the upload were complete, and
    cancels the handler a moment later: at most the batch that reached the device by then is computed, not the half
    of the latents that arrived."""
    target, running = served
    start = computed(running, "digits-gan")
    hold = threading.Event()
    with grpc.insecure_channel(target) as channel:
        call = pb_grpc.DebiasServiceStub(channel).Reweight(reweight_requests(latents(), hold))
        thread, outcome = background(call)
        time.sleep(0.5)  # the first chunk reaches the server
        call.cancel()
        ended = time.monotonic()
        hold.set()
        thread.join(10)
    assert outcome["code"] == grpc.StatusCode.CANCELLED
    after_the_end("Reweight: client cancels during its upload", running, ended, start)
    still_serving(target)


def test_a_client_that_disappears_mid_stream_stops_its_work(served):
    target, running = served
    start = computed(running, "digits-gan")
    client = subprocess.Popen([sys.executable, "-c", CLIENT.format(count=LATENTS), target], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "sending"
        wait_until(lambda: computed(running, "digits-gan") > start)
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait(30)
    ended, at_end = time.monotonic(), computed(running, "digits-gan")
    assert at_end - start < LATENTS, "the call finished before its client was killed: nothing was measured"
    after_the_end("ComputeLogVolumes: client process killed", running, ended, at_end)
    still_serving(target)


@pytest.mark.parametrize("rpc", ["ComputeLogVolumes", "Reweight"])
def test_a_deadline_shorter_than_the_work_stops_it(served, rpc):
    target, running = served
    start = computed(running, "digits-gan")
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DebiasServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            list(stream(stub, rpc, timeout=1.0))
    ended, at_end = time.monotonic(), computed(running, "digits-gan")
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert at_end - start < LATENTS, "the work finished within the deadline: nothing was measured"
    after_the_end(f"{rpc}: deadline of 1 s", running, ended, at_end)
    still_serving(target)
