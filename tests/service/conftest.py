"""A real server on port 0 (built-in zoo), a raw generated stub, and helpers to call it."""

from __future__ import annotations

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
