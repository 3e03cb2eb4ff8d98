"""Calls that end without an answer are counted too: authentication failures, cancellations and passed deadlines
show in ``gendebias_requests_total{method, code}`` (scraped from the server's own registry)."""

import threading
import time
from dataclasses import replace

import grpc
import numpy as np
import pytest

from gendebias.service.config import ServiceConfig
from gendebias.service.testing import running_server_state
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc

from .conftest import volumes_request


def requests_counted(running, method, code):
    return running.servicer.metrics.registry.get_sample_value(
        "gendebias_requests_total", {"method": method, "code": code}) or 0.0


def counted(running):
    return {tuple(sample.labels.values()): sample.value for metric in running.servicer.metrics.registry.collect()
            for sample in metric.samples if sample.name == "gendebias_requests_total"}


def eventually(value, expected, seconds=10.0):
    """Poll ``value()`` until it equals ``expected`` (the server counts after the client has its answer)."""
    until = time.monotonic() + seconds
    while value() != expected and time.monotonic() < until:
        time.sleep(0.05)
    return value()


def stalled_stream(release: threading.Event):
    """One valid message, then a client that neither sends more nor closes its side (for at most 20 s)."""
    yield volumes_request("ramp", np.zeros((1, 2)))
    release.wait(20)


def test_authentication_failures_are_counted_by_method_and_code():
    with running_server_state(replace(ServiceConfig(), token="t0ken")) as (target, running), \
            grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DebiasServiceStub(channel)
        for _ in range(3):
            with pytest.raises(grpc.RpcError):
                stub.ListGenerators(pb.ListGeneratorsRequest(), timeout=10)
        with pytest.raises(grpc.RpcError):
            channel.unary_unary(f"/{'x' * 500}/Nope")(b"", timeout=10)
        stub.ListGenerators(pb.ListGeneratorsRequest(), metadata=[("authorization", "Bearer t0ken")], timeout=10)
        assert requests_counted(running, "ListGenerators", "UNAUTHENTICATED") == 3
        assert requests_counted(running, "unknown", "UNAUTHENTICATED") == 1  # a caller's name is no label
        assert requests_counted(running, "ListGenerators", "OK") == 1
        errors = running.servicer.metrics.registry.get_sample_value("gendebias_errors_total",
                                                                    {"reason": "UNAUTHENTICATED"})
        assert errors == 4


def test_cancelled_and_deadline_exceeded_calls_are_counted():
    # a pool of a million digits-gan proposals takes far longer than the half second each call is given
    slow = pb.ResampleRequest(generator_id="digits-gan", n=1000, proposals=1_000_000, sampler=pb.SAMPLER_SIR, seed=1)
    with running_server_state(ServiceConfig()) as (target, running), grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DebiasServiceStub(channel)
        call = stub.Resample(slow, timeout=30)
        time.sleep(0.5)
        call.cancel()
        assert eventually(lambda: requests_counted(running, "Resample", "CANCELLED"), 1) == 1
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.Resample(slow, timeout=0.5))
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert eventually(lambda: requests_counted(running, "Resample", "DEADLINE_EXCEEDED"), 1) == 1, counted(running)
        release = threading.Event()
        try:  # a client that stalls its request stream until the deadline passes
            with pytest.raises(grpc.RpcError) as caught:
                list(stub.ComputeLogVolumes(stalled_stream(release), timeout=1.0))
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert eventually(lambda: requests_counted(running, "ComputeLogVolumes", "DEADLINE_EXCEEDED"), 1) == 1, \
                counted(running)
        finally:
            release.set()
        assert requests_counted(running, "Resample", "OK") == requests_counted(running, "ComputeLogVolumes",
                                                                                "OK") == 0
