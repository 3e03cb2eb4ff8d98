"""A long request takes turns with the others, and a cancelled one stops its work: measured on a real server."""

import time

import grpc
import numpy as np
import pytest

from gendebias.service.config import ServiceConfig
from gendebias.service.testing import running_server_state
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc

from .conftest import background, volumes_request


def computed(running) -> float:
    """Latents whose log-volume the server has computed so far (its Prometheus counter)."""
    value = running.servicer.metrics.registry.get_sample_value("gendebias_latents_total",
                                                               {"generator_id": "digits-gan"})
    return value or 0.0


def wait_until(condition, seconds=60.0):
    stop = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < stop, "the server never started the work"
        time.sleep(0.05)


def small_call_seconds(stub) -> float:
    started = time.monotonic()
    (answer,) = stub.ComputeLogVolumes(iter([volumes_request("digits-gan", np.zeros((2, 16), np.float32))]),
                                       timeout=30)
    assert answer.log_volumes.shape == [2]
    return time.monotonic() - started


@pytest.mark.parametrize("sampler", [pb.SAMPLER_SMC, pb.SAMPLER_MCMC, pb.SAMPLER_AUTO])
def test_a_cancelled_tempered_resample_stops_within_two_seconds(sampler):
    config = ServiceConfig(metrics_port=0, max_n=5000, max_evaluations=10**8)
    with running_server_state(config) as (target, running), grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DebiasServiceStub(channel)
        call = stub.Resample(pb.ResampleRequest(generator_id="digits-gan", n=5000, rho=3.0, seed=0, sampler=sampler))
        thread, outcome = background(call)
        wait_until(lambda: computed(running) > 0)
        call.cancel()
        thread.join(5)
        assert outcome["code"] == grpc.StatusCode.CANCELLED
        time.sleep(2.0)
        settled = computed(running)
        time.sleep(1.5)
        assert computed(running) == settled, "the cancelled sampler kept computing"
        assert small_call_seconds(stub) < 2.0


def test_a_small_call_answers_within_two_seconds_while_a_million_proposal_pool_runs():
    config = ServiceConfig(metrics_port=0, max_n=1000, max_proposals=1_000_000)
    with running_server_state(config) as (target, running), grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DebiasServiceStub(channel)
        call = stub.Resample(pb.ResampleRequest(generator_id="digits-gan", n=1000, proposals=1_000_000, seed=0,
                                                sampler=pb.SAMPLER_SIR))
        thread, outcome = background(call)
        wait_until(lambda: computed(running) > 0)
        waits = [small_call_seconds(stub) for _ in range(3)]
        assert computed(running) < 1_000_000, "the pool finished before the small calls: nothing was measured"
        call.cancel()
        thread.join(5)
        assert max(waits) < 2.0, waits
        assert outcome["code"] == grpc.StatusCode.CANCELLED


def test_a_deadline_returns_the_tempered_result_reached_counted_from_arrival():
    config = ServiceConfig(metrics_port=0, max_n=5000, max_evaluations=10**8)
    with running_server_state(config) as (target, _), grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DebiasServiceStub(channel)
        started = time.monotonic()
        responses = list(stub.Resample(pb.ResampleRequest(generator_id="digits-gan", n=500, rho=3.0, seed=0,
                                                          sampler=pb.SAMPLER_SMC), timeout=8.0))
        elapsed = time.monotonic() - started
        summary = responses[-1].summary
        assert summary.stopped == "deadline" and 0.0 <= summary.beta < 1.0
        assert any("beta" in warning for warning in summary.warnings)
        assert summary.n == 500 and elapsed < 8.0
