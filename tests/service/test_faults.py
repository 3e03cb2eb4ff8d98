"""Faults fail only their own request: a generator that raises, one that returns NaN, an injected device
out-of-memory, each with its status; the server keeps its worker, stays SERVING and answers everyone else.

The faulty generators (``faulty_generators.py``) exist only because this module hands them to the server it starts;
no registry names them.
"""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gendebias.service.config import ServiceConfig
from gendebias.service.server import load_generators
from gendebias.service.testing import running_server_state
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc
from gendebias.wire import from_tensor, to_tensor

from .conftest import error_reason, reported, volumes_request
from .faulty_generators import LOG_VOLUME, faulty_generators, flagged_latents

# what each fault answers (docs/reliability.md#faults): the code, the reason, and a fixed or explaining message
FAULTS = {
    "raising": (grpc.StatusCode.INTERNAL, "ERROR_REASON_INTERNAL"),
    "nan": (grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_NUMERICAL"),
    "oom": (grpc.StatusCode.RESOURCE_EXHAUSTED, "ERROR_REASON_DEVICE_MEMORY"),
}
OUTCOMES: dict[str, str] = {}


@pytest.fixture(scope="module")
def faulty():
    generators = {**load_generators(ServiceConfig()), **faulty_generators()}
    with running_server_state(ServiceConfig(max_delay_ms=20), generators) as (target, running):
        yield target, running


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    if OUTCOMES:
        reported("faults", dict(sorted(OUTCOMES.items())))


def volumes(stub, generator_id, latents, timeout=30):
    (answer,) = stub.ComputeLogVolumes(iter([volumes_request(generator_id, np.asarray(latents))]), timeout=timeout)
    return from_tensor(answer.log_volumes, field="log_volumes")


def reweighted(stub, generator_id, latents, timeout=30):
    responses = list(stub.Reweight(iter([pb.ReweightRequest(generator_id=generator_id,
                                                             latents=to_tensor(np.asarray(latents)))]),
                                   timeout=timeout))
    return from_tensor(responses[0].chunk.log_volumes, field="log_volumes")


def serving(target) -> bool:
    with grpc.insecure_channel(target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
    return status == health_pb2.HealthCheckResponse.SERVING


class Bystander:
    """Another client calling the well-behaved ``linear`` generator in a loop (bounded: at most 60 s) while the
    faults happen; every answer must be exact."""

    def __init__(self, target: str) -> None:
        self.target, self.answers, self.failures = target, 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Bystander:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        latents = np.random.default_rng(1).standard_normal((3, 4)).clip(-2, 2).astype(np.float32)
        stop = time.monotonic() + 60
        with grpc.insecure_channel(self.target) as channel:
            stub = pb_grpc.DebiasServiceStub(channel)
            while not self._stop.is_set() and time.monotonic() < stop:
                try:
                    np.testing.assert_allclose(volumes(stub, "linear", latents), LOG_VOLUME, rtol=1e-5)
                    self.answers += 1
                except (grpc.RpcError, AssertionError) as error:
                    self.failures.append(repr(error)[:200])


@pytest.mark.parametrize("generator_id", sorted(FAULTS))
@pytest.mark.parametrize("rpc", ["ComputeLogVolumes", "Reweight"])
def test_a_fault_fails_only_its_own_request(faulty, generator_id, rpc):
    target, running = faulty
    call = volumes if rpc == "ComputeLogVolumes" else reweighted
    code, reason = FAULTS[generator_id]
    module = running.servicer.generators[generator_id].module
    with Bystander(target) as bystander, grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DebiasServiceStub(channel)
        module.armed = True
        try:
            with pytest.raises(grpc.RpcError) as caught:
                call(stub, generator_id, flagged_latents(8))
        finally:
            module.armed = False
        time.sleep(0.3)  # the bystander keeps calling after the fault
        good = call(stub, generator_id, flagged_latents(8)[1:])  # the same generator, without the faulty latent
    assert (caught.value.code(), error_reason(caught.value)[0]) == (code, reason)
    details = caught.value.details()
    assert len(details) < 300 and "Traceback" not in details and "index" not in details, details
    if generator_id == "raising":
        assert details == "internal error; the server log has the details"
    assert not bystander.failures and bystander.answers > 0, bystander.failures[:3]
    np.testing.assert_allclose(good, LOG_VOLUME, rtol=1e-5)
    assert serving(target)
    OUTCOMES[f"{rpc}/{generator_id}"] = (f"{caught.value.code().name} {reason.removeprefix('ERROR_REASON_')}; "
                                         f"bystander {bystander.answers} OK, 0 failed")


@pytest.mark.parametrize("generator_id", ["raising", "nan"])
def test_a_bad_latent_fails_only_its_own_call_when_batched_with_good_ones(faulty, generator_id):
    """Two calls for one generator merge into one device batch; the one with the bad latent fails alone.

    The ``gated`` generator holds the device thread while both calls queue, so they are sure to share a batch."""
    target, running = faulty
    engine, gate = running.engine, running.servicer.generators["gated"].module
    outcomes: dict[str, object] = {}

    def run(name, latents, generator=generator_id):
        with grpc.insecure_channel(target) as channel:  # each call from its own client
            try:
                outcomes[name] = volumes(pb_grpc.DebiasServiceStub(channel), generator, latents)
            except grpc.RpcError as error:
                outcomes[name] = error.code()

    gate.hold()
    threads = [threading.Thread(target=run, args=("gate", np.zeros((1, 4), np.float32), "gated"))]
    try:
        threads[0].start()
        assert gate.entered.wait(20), "the gated call never reached the device"
        threads += [threading.Thread(target=run, args=("bad", flagged_latents(4).numpy())),
                    threading.Thread(target=run, args=("good", flagged_latents(4, seed=1)[1:].numpy()))]
        for thread in threads[1:]:
            thread.start()
        wait_for(lambda: engine._queue.qsize() == 2)
    finally:
        gate.release()
    for thread in threads:
        thread.join(30)
    assert outcomes["bad"] == FAULTS[generator_id][0]
    good = outcomes["good"]
    assert isinstance(good, np.ndarray), f"the good call failed with {good} beside the bad one"
    np.testing.assert_allclose(good, LOG_VOLUME, rtol=1e-5)
    np.testing.assert_allclose(outcomes["gate"], LOG_VOLUME, rtol=1e-5)


def wait_for(condition, seconds=20.0):
    stop = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < stop, "timed out"
        time.sleep(0.02)
