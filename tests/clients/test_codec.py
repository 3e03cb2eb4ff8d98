"""Request chunking, response reassembly and error mapping, without a server."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from gendebias.clients import _codec
from gendebias.clients._errors import error_from_rpc
from gendebias.errors import (
    DeadlineExceededError,
    InternalError,
    InvalidLatentsError,
    QueueFullError,
    ServiceUnavailableError,
)
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.wire import from_tensor, to_tensor


def test_latents_travel_in_chunks_of_at_most_1_mib_with_options_on_the_first_message_only():
    latents = np.arange(200_000 * 3, dtype=np.float64).reshape(200_000, 3)
    count, requests = _codec.log_volumes_requests("ramp", latents, top_k=2, singular_values=True, tile_codes=False,
                                                  label=None)
    messages = list(requests)
    assert count == 200_000 and len(messages) == 5
    assert all(len(message.latents.data) <= _codec.CHUNK_BYTES for message in messages)
    assert [message.generator_id for message in messages] == ["ramp", "", "", "", ""]
    assert messages[0].top_k == 2 and messages[0].return_singular_values and not messages[1].top_k
    assert not messages[0].HasField("label")
    rebuilt = np.concatenate([from_tensor(message.latents, field="latents") for message in messages])
    assert np.array_equal(rebuilt, latents)


def test_log_proposal_chunks_stay_aligned_with_the_latents():
    latents = np.zeros((100_000, 4), dtype=np.float32)
    proposal = np.arange(100_000, dtype=np.float64)
    _, requests = _codec.reweight_requests("ramp", latents, rho=0.0, target="uniform", top_k=None, label=3,
                                           log_proposal=proposal)
    messages = list(requests)
    assert len(messages) > 1
    assert messages[0].HasField("rho") and messages[0].rho == 0.0 and messages[0].label == 3
    assert messages[0].target == pb.TARGET_UNIFORM
    assert all(message.latents.shape[0] == message.log_proposal.shape[0] for message in messages)
    rebuilt = np.concatenate([from_tensor(message.log_proposal, field="log_proposal") for message in messages])
    assert np.array_equal(rebuilt, proposal)


def test_integer_latents_become_float64_and_other_dtypes_are_refused():
    assert _codec.check_latents(np.ones((2, 3), dtype=np.int32)).dtype == np.float64
    assert _codec.check_latents(np.ones((2, 3), dtype=np.float16)).dtype == np.float64
    with pytest.raises(InvalidLatentsError, match="float32 or float64"):
        _codec.check_latents(np.array([["a", "b"]]))
    with pytest.raises(InvalidLatentsError, match="at least one latent"):
        _codec.check_latents(np.zeros((0, 16), dtype=np.float32))


def test_misplaced_chunks_and_a_missing_summary_are_internal_errors():
    assembler = _codec.LogVolumesAssembler(4)
    assembler.add(pb.ComputeLogVolumesResponse(offset=0, log_volumes=to_tensor(np.zeros(2))))
    with pytest.raises(InternalError, match="offset 3"):
        assembler.add(pb.ComputeLogVolumesResponse(offset=3, log_volumes=to_tensor(np.zeros(2))))
    with pytest.raises(InternalError, match="summary"):
        _codec.ResampleAssembler().result()


class FailedCall(grpc.RpcError):
    """A stand-in for a failed call: what ``grpc.RpcError`` raised by a channel exposes."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, bytes], ...] = ()) -> None:
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._trailing


def rich_call(code: grpc.StatusCode, message: str, reason: str, field: str | None = None) -> FailedCall:
    info = error_details_pb2.ErrorInfo(reason=reason, domain="gendebias", metadata={"field": field} if field else {})
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return FailedCall(code, message, (("grpc-status-details-bin", status.SerializeToString()),))


def test_the_error_info_reason_picks_the_class_and_the_field():
    error = error_from_rpc(rich_call(grpc.StatusCode.INVALID_ARGUMENT, "bad latents", "ERROR_REASON_INVALID_LATENTS",
                                     "latents"))
    assert type(error) is InvalidLatentsError and error.field == "latents" and str(error) == "bad latents"
    error = error_from_rpc(rich_call(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy", "ERROR_REASON_QUEUE_FULL"))
    assert type(error) is QueueFullError and error.field is None


@pytest.mark.parametrize(("code", "expected"), [
    (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
    (grpc.StatusCode.UNAVAILABLE, ServiceUnavailableError),
    (grpc.StatusCode.UNKNOWN, InternalError),
    (grpc.StatusCode.DATA_LOSS, InternalError),
])
def test_without_error_info_the_status_code_picks_the_class(code, expected):
    error = error_from_rpc(FailedCall(code, "something failed"), target="host:1")
    assert type(error) is expected
    assert str(error) == "server host:1: something failed"


def test_a_rich_status_that_disagrees_with_the_call_is_ignored():
    call = rich_call(grpc.StatusCode.INVALID_ARGUMENT, "bad", "ERROR_REASON_INVALID_LATENTS")
    call._code = grpc.StatusCode.UNAVAILABLE
    assert type(error_from_rpc(call)) is ServiceUnavailableError
