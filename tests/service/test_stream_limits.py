"""A ComputeLogVolumes or Reweight stream whose messages together exceed ``max_latents`` is refused with
INVALID_ARGUMENT (LIMIT_EXCEEDED on ``latents``), and the latents past the limit are never computed."""

import grpc
import numpy as np
import pytest

from gendebias.service import decoding
from gendebias.service.config import ServiceConfig
from gendebias.service.testing import running_server_state
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc
from gendebias.wire import to_tensor

from .conftest import error_reason, volumes_request

LIMIT, MESSAGE = 1000, 400  # three messages of 400: the third crosses the limit


@pytest.fixture(scope="module")
def limited():
    with running_server_state(ServiceConfig(max_latents=LIMIT)) as (target, running), \
            grpc.insecure_channel(target) as channel:
        yield pb_grpc.DebiasServiceStub(channel), running


def computed(running):
    return running.metrics.registry.get_sample_value("gendebias_latents_total", {"generator_id": "digits-gan"}) or 0


def messages(kind):
    latents = np.random.default_rng(0).standard_normal((3, MESSAGE, 16)).astype(np.float32)
    if kind == "ComputeLogVolumes":
        return [volumes_request("digits-gan", part) for part in latents]
    return [pb.ReweightRequest(generator_id="digits-gan", latents=to_tensor(part)) for part in latents]


@pytest.mark.parametrize(("kind", "before_the_excess"), [("ComputeLogVolumes", 2 * MESSAGE), ("Reweight", 0)])
def test_a_stream_over_max_latents_is_refused_before_the_excess_is_computed(limited, kind, before_the_excess):
    """ComputeLogVolumes answers each message as it arrives, so the first two (800 latents) are computed; Reweight
    computes once every message is in, so nothing is."""
    stub, running = limited
    start = computed(running)
    with pytest.raises(grpc.RpcError) as caught:
        list(getattr(stub, kind)(iter(messages(kind)), timeout=120))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == ("ERROR_REASON_LIMIT_EXCEEDED", "latents")
    assert computed(running) - start == before_the_excess


@pytest.mark.parametrize("kind", ["ComputeLogVolumes", "Reweight"])
def test_a_stream_over_max_latents_is_refused_before_the_excess_is_allocated(limited, monkeypatch, kind):
    stub, _ = limited
    decoded = []
    original = decoding.latents_from

    def counted(message, generator, **kwargs):
        latents = original(message, generator, **kwargs)
        decoded.append(latents.shape[0])
        return latents

    monkeypatch.setattr(decoding, "latents_from", counted)
    with pytest.raises(grpc.RpcError) as caught:
        list(getattr(stub, kind)(iter(messages(kind)), timeout=120))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sum(decoded) <= LIMIT, f"decoded {decoded} latents under a limit of {LIMIT}"
