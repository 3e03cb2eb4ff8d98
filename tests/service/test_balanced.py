"""``TARGET_BALANCED`` through the server: the in-process answer, computed with the generator's classifier."""

import grpc
import numpy as np
import pytest

from gendebias.generators import load_generator
from gendebias.geometry import log_volume, log_weights, resample
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.wire import from_tensor, to_tensor

from .conftest import error_reason


def test_reweight_balanced_is_the_in_process_answer_and_balances_the_classifier(stub):
    generator = load_generator("digits-vae")
    latents = generator.sample_latents(600, seed=1)
    requests = [pb.ReweightRequest(generator_id="digits-vae", latents=to_tensor(latents[:300].numpy()),
                                   target=pb.TARGET_BALANCED),
                pb.ReweightRequest(latents=to_tensor(latents[300:].numpy()))]
    responses = list(stub.Reweight(iter(requests)))
    weights = np.concatenate([from_tensor(r.chunk.log_weights, field="x") for r in responses[:-1]])
    probabilities = generator.class_probabilities(latents)
    expected = log_weights(log_volume(generator, latents), target="balanced", class_probabilities=probabilities)
    np.testing.assert_allclose(weights, expected.numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.exp(weights) @ probabilities.numpy(), np.full(10, 0.1), rtol=0, atol=1e-8)


def test_resample_balanced_sir_is_the_in_process_answer(stub):
    generator = load_generator("digits-vae")
    request = pb.ResampleRequest(generator_id="digits-vae", n=200, proposals=2000, seed=11,
                                 sampler=pb.SAMPLER_SIR, target=pb.TARGET_BALANCED)
    responses = list(stub.Resample(request))
    latents = np.concatenate([from_tensor(r.chunk.latents, field="x") for r in responses[:-1]])
    pool = generator.sample_latents(2000, seed=11)
    weights = log_weights(log_volume(generator, pool, chunk_size=256), target="balanced",
                          class_probabilities=generator.class_probabilities(pool))
    assert np.array_equal(latents, pool[resample(weights, 200, seed=11)].numpy())


@pytest.mark.parametrize("call", ["reweight", "resample"])
def test_balanced_on_a_generator_without_a_classifier_is_an_invalid_target(stub, call):
    latents = to_tensor(np.zeros((2, 2)))
    with pytest.raises(grpc.RpcError) as raised:
        if call == "reweight":
            list(stub.Reweight(iter([pb.ReweightRequest(generator_id="ramp", latents=latents,
                                                        target=pb.TARGET_BALANCED)])))
        else:
            list(stub.Resample(pb.ResampleRequest(generator_id="ramp", n=10, target=pb.TARGET_BALANCED)))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(raised.value)[1] == "target"
    assert "classifier" in raised.value.details()
