"""Hostile requests against a real server on port 0: oversized echoes, overflowing shapes and counts, unknown
methods behind a token. Each answers its documented code cleanly, logs no traceback, and the server stays healthy."""

import logging
from dataclasses import replace

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gendebias.service.config import ServiceConfig
from gendebias.service.testing import running_server_state
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc

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


def test_an_empty_tensor_of_overflowing_shape_is_invalid_argument(served, stub):
    target, _ = served
    request = pb.ComputeLogVolumesRequest(generator_id="digits-gan",
                                          latents={"dtype": 1, "shape": [0, 2**62, 2**62], "data": b""})
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.ComputeLogVolumes(iter([request]), timeout=10))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == ("ERROR_REASON_INVALID_TENSOR", "latents")
    assert_serving(target)


@pytest.mark.parametrize("n", [1, 10, 1000])
def test_an_overflowing_oversampling_is_invalid_argument(served, stub, n):
    target, _ = served
    request = pb.ResampleRequest(generator_id="digits-gan", n=n, oversampling=1e308, sampler=pb.SAMPLER_SIR)
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.Resample(request, timeout=10))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == ("ERROR_REASON_LIMIT_EXCEEDED", "oversampling")
    assert_serving(target)


@pytest.fixture(scope="module")
def guarded():
    with running_server_state(replace(ServiceConfig(), token=SECRET)) as (target, running):
        yield target, running


@pytest.mark.parametrize("method", ["/gendebias.v1.DebiasService/Nope", "/no.Such/Method"])
@pytest.mark.parametrize("metadata", [(), (("authorization", "Bearer wrong"),)])
def test_an_unknown_method_without_a_token_is_unauthenticated_and_logs_no_traceback(guarded, caplog, method,
                                                                                    metadata):
    target, _ = guarded
    caplog.set_level(logging.DEBUG)
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(method)
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as caught:
                call(b"\x00\x01", metadata=metadata, timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value.details()
            assert error_reason(caught.value) == ("ERROR_REASON_UNAUTHENTICATED", "")
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info]
    assert_serving(target)


def test_an_unknown_method_with_the_token_is_unimplemented(guarded, caplog):
    target, _ = guarded
    caplog.set_level(logging.DEBUG)
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as caught:
        channel.unary_unary("/gendebias.v1.DebiasService/Nope")(
            b"", metadata=[("authorization", f"Bearer {SECRET}")], timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_the_token_is_compared_in_constant_time_and_never_logged(guarded, caplog, monkeypatch):
    import hmac

    target, _ = guarded
    compared = []
    original = hmac.compare_digest

    def spy(given, expected):
        compared.append(len(given))
        return original(given, expected)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    caplog.set_level(logging.DEBUG)
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DebiasServiceStub(channel)
        for token in ("wrong", SECRET[:-1], SECRET):
            try:
                stub.ListGenerators(pb.ListGeneratorsRequest(), metadata=[("authorization", f"Bearer {token}")],
                                    timeout=10)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED
                assert SECRET not in (error.details() or "")
    assert len(compared) == 3
    assert SECRET not in caplog.text
    assert SECRET not in repr(ServiceConfig(token=SECRET))


def test_every_status_message_fits_the_trailers():
    from gendebias.errors import InvalidArgumentError, shown
    from gendebias.service.status import rpc_status_for

    status = rpc_status_for(InvalidArgumentError("y" * 20_000, field="latents"))
    assert len(status.details) <= 1030
    assert sum(len(value) for _, value in status.trailing_metadata) < 4096
    assert shown("z" * 100) == repr("z" * 100)[:64] + "…" and shown("ab") == "'ab'"


def test_a_tensor_of_100000_sizes_is_refused_with_a_short_message():
    from gendebias.errors import InvalidTensorError
    from gendebias.wire import from_tensor

    with pytest.raises(InvalidTensorError, match="…") as caught:
        from_tensor(pb.ComputeLogVolumesRequest(latents={"dtype": 1, "shape": [1] * 100_000}).latents, field="x")
    assert len(str(caught.value)) < 200
