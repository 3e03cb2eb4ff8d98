"""Hostile requests against a real server on port 0: oversized echoes, overflowing shapes and counts, unknown
methods behind a token. Each answers its documented code cleanly, logs no traceback, and the server stays healthy."""


import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gendebias.v1 import debias_service_pb2 as pb

from .conftest import error_reason

LONG_ID = "x" * 12_000
SECRET = "s3cret-token-value"


def assert_serving(target):
    with grpc.insecure_channel(target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING


def test_a_12000_character_generator_id_is_not_found_with_a_short_message(served, stub):
    target, _ = served
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetGenerator(pb.GetGeneratorRequest(generator_id=LONG_ID), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(caught.value) == ("ERROR_REASON_UNKNOWN_GENERATOR", "generator_id")
    assert len(caught.value.details()) < 1000 and "…" in caught.value.details()
    for call in (lambda: list(stub.Resample(pb.ResampleRequest(generator_id=LONG_ID, n=1), timeout=10)),
                 lambda: list(stub.ComputeLogVolumes(iter([pb.ComputeLogVolumesRequest(generator_id=LONG_ID)]),
                                                     timeout=10))):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_reason(caught.value) == ("ERROR_REASON_UNKNOWN_GENERATOR", "generator_id")
    assert_serving(target)


def test_every_status_message_fits_the_trailers():
    from gendebias.errors import InvalidArgumentError, shown
    from gendebias.service.status import rpc_status_for

    status = rpc_status_for(InvalidArgumentError("y" * 20_000, field="latents"))
    assert len(status.details) <= 1030
    assert sum(len(value) for _, value in status.trailing_metadata) < 4096
    assert shown("z" * 100) == repr("z" * 100)[:64] + "…" and shown("ab") == "'ab'"
