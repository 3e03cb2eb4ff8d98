"""Every RPC through the raw generated stub against a real server on port 0, compared with in-process results."""

import math

import grpc
import numpy as np
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gendebias.generators import load_generator
from gendebias.geometry import (
    effective_sample_size,
    log_volume,
    log_weights,
    resample,
    singular_values,
    tile_codes,
)
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.wire import from_tensor, to_tensor

from .conftest import error_reason, volumes_request


def test_list_and_get_generators(stub):
    listed = stub.ListGenerators(pb.ListGeneratorsRequest()).generators
    assert [g.generator_id for g in listed] == ["digits-gan", "digits-vae", "parabola", "ramp", "tent"]
    info = stub.GetGenerator(pb.GetGeneratorRequest(generator_id="digits-gan")).generator
    assert (list(info.latent_shape), list(info.output_shape), info.kind) == ([16], [1, 8, 8], "gan")
    assert info.piecewise_affine and info.prior == "normal" and info.dtype == 1 and info.classes == 0
    ramp = stub.GetGenerator(pb.GetGeneratorRequest(generator_id="ramp")).generator
    assert ramp.prior == "uniform" and dict(ramp.prior_parameters) == {"low": -1.0, "high": 1.0}


def test_log_volumes_equal_the_in_process_answer_bit_for_bit(stub):
    generator = load_generator("digits-gan")
    latents = generator.sample_latents(7, seed=3)
    request = volumes_request("digits-gan", latents.numpy(), top_k=5, return_singular_values=True,
                              return_tile_codes=True)
    (response,) = stub.ComputeLogVolumes(iter([request]))
    assert np.array_equal(from_tensor(response.log_volumes, field="x"), log_volume(generator, latents, top_k=5).numpy())
    assert np.array_equal(from_tensor(response.singular_values, field="x"),
                          singular_values(generator, latents, top_k=5).numpy())
    assert np.array_equal(from_tensor(response.tile_codes, field="x"), tile_codes(generator, latents).numpy())


def test_empty_latents_give_empty_results(stub):
    (response,) = stub.ComputeLogVolumes(iter([volumes_request("digits-gan", np.zeros((0, 16), np.float32))]))
    assert from_tensor(response.log_volumes, field="x").shape == (0,)


def test_latents_stream_in_and_results_stream_out_in_order(stub):
    ramp = load_generator("ramp")
    latents = ramp.sample_latents(3000, seed=0).numpy()
    requests = [volumes_request("ramp", latents[:1000])] + [
        pb.ComputeLogVolumesRequest(latents=to_tensor(part)) for part in (latents[1000:2500], latents[2500:])]
    responses = list(stub.ComputeLogVolumes(iter(requests)))
    assert [r.offset for r in responses] == [0, 1000, 2500]
    values = np.concatenate([from_tensor(r.log_volumes, field="x") for r in responses])
    expected = np.where(latents[:, 0] > 0, 0.5 * math.log(10), 0.0)
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-12)


def test_reweight_matches_in_process_weights(stub):
    generator = load_generator("digits-vae")
    latents = generator.sample_latents(600, seed=1)
    requests = [pb.ReweightRequest(generator_id="digits-vae", latents=to_tensor(latents[:300].numpy()), rho=0.5),
                pb.ReweightRequest(latents=to_tensor(latents[300:].numpy()))]
    responses = list(stub.Reweight(iter(requests)))
    summary = responses[-1].summary
    weights = np.concatenate([from_tensor(r.chunk.log_weights, field="x") for r in responses[:-1]])
    expected = log_weights(log_volume(generator, latents), rho=0.5)
    np.testing.assert_allclose(weights, expected.numpy(), rtol=0, atol=1e-9)
    assert summary.count == 600
    assert summary.ess == pytest.approx(effective_sample_size(expected), rel=1e-9)


def test_resample_is_the_in_process_answer_and_seeded(stub):
    generator = load_generator("digits-gan")
    request = pb.ResampleRequest(generator_id="digits-gan", n=200, proposals=2000, seed=11, rho=0.5,
                                 sampler=pb.SAMPLER_SIR, return_outputs=True)
    first, second = list(stub.Resample(request)), list(stub.Resample(request))
    latents = np.concatenate([from_tensor(r.chunk.latents, field="x") for r in first[:-1]])
    assert np.array_equal(latents, np.concatenate([from_tensor(r.chunk.latents, field="x") for r in second[:-1]]))
    pool = generator.sample_latents(2000, seed=11)
    weights = log_weights(log_volume(generator, pool, chunk_size=256), rho=0.5)
    indices = resample(weights, 200, seed=11)
    assert np.array_equal(latents, pool[indices].numpy())
    outputs = np.concatenate([from_tensor(r.chunk.outputs, field="x") for r in first[:-1]])
    with torch.no_grad():
        np.testing.assert_allclose(outputs, generator(pool[indices]).numpy(), rtol=1e-6, atol=1e-6)
    summary = first[-1].summary
    assert (summary.n, summary.proposals, summary.seed, summary.evaluations) == (200, 2000, 11, 2000)
    assert summary.pool_ess == pytest.approx(effective_sample_size(weights), rel=1e-9)
    assert summary.ess == pytest.approx(1 / (1 / 200 + 1 / effective_sample_size(weights)), rel=1e-9)
    assert summary.distinct == torch.unique(indices).shape[0] and math.isnan(summary.acceptance_rate)
    other = list(stub.Resample(pb.ResampleRequest(generator_id="digits-gan", n=200, proposals=2000, seed=12,
                                                  sampler=pb.SAMPLER_SIR)))
    assert not np.array_equal(latents, from_tensor(other[0].chunk.latents, field="x"))


def test_rejection_reports_its_acceptance_rate(stub):
    responses = list(stub.Resample(pb.ResampleRequest(generator_id="ramp", n=100, proposals=5000, seed=2,
                                                      sampler=pb.SAMPLER_SIR, target=pb.TARGET_UNIFORM,
                                                      scheme=pb.SCHEME_REJECTION)))
    summary = responses[-1].summary
    # accept with probability exp(lv - max lv): 1 off the ramp, 1 on it -> (1 + 1/sqrt(10)) / 2 on average
    expected = 0.5 * (1 + 1 / math.sqrt(10))
    assert abs(summary.acceptance_rate - expected) < 4 * math.sqrt(expected * (1 - expected) / 5000)
    assert summary.scheme == pb.SCHEME_REJECTION


def nan_latents():
    latents = np.zeros((3, 16), np.float32)
    latents[1, 4] = np.nan
    return latents


def truncated():
    tensor = to_tensor(np.zeros((4, 16), np.float32))
    tensor.data = tensor.data[:-3]
    return tensor


def huge():
    return pb.ComputeLogVolumesRequest(generator_id="digits-gan", latents={"dtype": 1, "shape": [2**40, 16]})


BATTERY = [
    ("wrong latent dim", volumes_request("digits-gan", np.zeros((2, 15), np.float32)), "INVALID_LATENTS", "latents"),
    ("NaN", volumes_request("digits-gan", nan_latents()), "INVALID_LATENTS", "latents"),
    ("Inf", volumes_request("digits-gan", np.full((1, 16), np.inf, np.float32)), "INVALID_LATENTS", "latents"),
    ("truncated bytes", pb.ComputeLogVolumesRequest(generator_id="digits-gan", latents=truncated()),
     "INVALID_TENSOR", "latents"),
    ("shape/length mismatch", pb.ComputeLogVolumesRequest(
        generator_id="digits-gan", latents={"dtype": 2, "shape": [3, 16], "data": b"\0" * 8 * 16}),
     "INVALID_TENSOR", "latents"),
    ("huge declared shape", huge(), "LIMIT_EXCEEDED", "latents"),
    ("negative size", pb.ComputeLogVolumesRequest(generator_id="digits-gan", latents={"dtype": 1, "shape": [-1, 16]}),
     "INVALID_TENSOR", "latents"),
    ("int latents", volumes_request("digits-gan", np.zeros((2, 16), np.int64)), "INVALID_TENSOR", "latents"),
    ("unknown dtype", pb.ComputeLogVolumesRequest(generator_id="digits-gan", latents={"dtype": 9, "shape": [1]}),
     "INVALID_TENSOR", "latents"),
    ("unknown generator", volumes_request("nope", np.zeros((1, 16), np.float32)), "UNKNOWN_GENERATOR",
     "generator_id"),
    ("top_k too large", volumes_request("digits-gan", np.zeros((1, 16), np.float32), top_k=17), "INVALID_ARGUMENT",
     "top_k"),
    ("label on an unconditional generator", volumes_request("digits-gan", np.zeros((1, 16), np.float32), label=1),
     "INVALID_ARGUMENT", "label"),
    ("unknown method", volumes_request("digits-gan", np.zeros((1, 16), np.float32), method=9), "INVALID_ARGUMENT",
     "method"),
    ("unknown precision", volumes_request("digits-gan", np.zeros((1, 16), np.float32), precision=9),
     "INVALID_ARGUMENT", "precision"),
    ("randomized without top_k", volumes_request("digits-gan", np.zeros((1, 16), np.float32),
                                                 method=pb.METHOD_RANDOMIZED), "INVALID_ARGUMENT", "top_k"),
    ("singular values of an estimate", volumes_request("digits-gan", np.zeros((1, 16), np.float32), top_k=4,
                                                       method=pb.METHOD_PROJECTION, return_singular_values=True),
     "INVALID_ARGUMENT", "method"),
    ("bf16 on a float64 generator", volumes_request("ramp", np.zeros((1, 1)), precision=pb.PRECISION_BF16),
     "INVALID_ARGUMENT", "precision"),
    ("too many power iterations", volumes_request("digits-gan", np.zeros((1, 16), np.float32), top_k=4,
                                                  method=pb.METHOD_RANDOMIZED, power_iterations=21),
     "INVALID_ARGUMENT", "power_iterations"),
    ("projection wider than the output", volumes_request("digits-gan", np.zeros((1, 16), np.float32),
                                                         method=pb.METHOD_PROJECTION, projection_dim=65),
     "INVALID_ARGUMENT", "projection_dim"),
]
RESAMPLE_BATTERY = [
    ("n too large", {"n": 1001}, "LIMIT_EXCEEDED", "n"),
    ("negative n", {"n": -5}, "INVALID_ARGUMENT", "n"),
    ("zero n", {"n": 0}, "INVALID_ARGUMENT", "n"),
    ("too many proposals", {"n": 10, "proposals": 20_001, "sampler": pb.SAMPLER_SIR}, "LIMIT_EXCEEDED", "proposals"),
    ("unknown scheme", {"n": 10, "scheme": 42}, "INVALID_ARGUMENT", "scheme"),
    ("unknown target", {"n": 10, "target": 7}, "INVALID_ARGUMENT", "target"),
    ("non-finite rho", {"n": 10, "rho": math.inf}, "INVALID_ARGUMENT", "rho"),
    ("oversampling below 1", {"n": 10, "oversampling": 0.5, "sampler": pb.SAMPLER_SIR}, "INVALID_ARGUMENT",
     "oversampling"),
    ("unknown sampler", {"n": 10, "sampler": 9}, "INVALID_ARGUMENT", "sampler"),
    ("SMC budget over the limit", {"n": 10, "sampler": pb.SAMPLER_SMC, "max_evaluations": 10**9}, "LIMIT_EXCEEDED",
     "max_evaluations"),
    ("without replacement from a small pool", {"n": 10, "proposals": 5, "scheme": pb.SCHEME_WITHOUT_REPLACEMENT,
                                               "sampler": pb.SAMPLER_SIR},
     "INVALID_ARGUMENT", ""),
]
CODES = {"INVALID_LATENTS": grpc.StatusCode.INVALID_ARGUMENT, "INVALID_TENSOR": grpc.StatusCode.INVALID_ARGUMENT,
         "LIMIT_EXCEEDED": grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
         "UNKNOWN_GENERATOR": grpc.StatusCode.NOT_FOUND, "UNSUPPORTED": grpc.StatusCode.UNIMPLEMENTED}


def test_bad_input_battery_gets_documented_codes_and_the_server_stays_healthy(served, stub):
    target, _ = served
    for name, request, reason, field in BATTERY:
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.ComputeLogVolumes(iter([request])))
        assert caught.value.code() == CODES[reason], name
        assert error_reason(caught.value) == (f"ERROR_REASON_{reason}", field), name
    for name, fields, reason, field in RESAMPLE_BATTERY:
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.Resample(pb.ResampleRequest(generator_id="digits-gan", **fields)))
        assert caught.value.code() == CODES[reason], name
        assert error_reason(caught.value) == (f"ERROR_REASON_{reason}", field), name
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetGenerator(pb.GetGeneratorRequest(generator_id="digits-gann"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND and "digits-gan" in caught.value.details()
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    (response,) = stub.ComputeLogVolumes(iter([volumes_request("digits-gan", np.zeros((1, 16), np.float32))]))
    assert from_tensor(response.log_volumes, field="x").shape == (1,)


def test_reflection_lists_the_services(served):
    target, _ = served
    with grpc.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        (response,) = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {service.name for service in response.list_services_response.service}
    assert {"gendebias.v1.DebiasService", "grpc.health.v1.Health"} <= names


def test_smc_through_the_service_returns_diverse_latents(stub):
    request = pb.ResampleRequest(generator_id="digits-gan", n=200, seed=5, sampler=pb.SAMPLER_SMC)
    responses = list(stub.Resample(request, timeout=300))
    latents = np.concatenate([from_tensor(r.chunk.latents, field="x") for r in responses[:-1]])
    summary = responses[-1].summary
    assert latents.shape == (200, 16) and summary.n == 200 and summary.stopped == "done"
    assert np.unique(latents, axis=0).shape[0] >= 0.9 * 200
    assert summary.schedule[-1] == 1.0 and min(summary.ess_history) >= 0.3 * 200
    assert summary.evaluations >= 200 and math.isfinite(summary.log_normalizer)


def test_mcmc_through_the_service_stops_at_its_budget(stub):
    request = pb.ResampleRequest(generator_id="digits-gan", n=200, seed=1, sampler=pb.SAMPLER_MCMC,
                                 max_evaluations=500, particles=10)
    summary = list(stub.Resample(request))[-1].summary
    assert summary.stopped == "max_evaluations" and summary.evaluations <= 500 and summary.n < 200


def test_default_resample_of_digits_gan_is_diverse_and_says_what_it_chose(stub):
    responses = list(stub.Resample(pb.ResampleRequest(generator_id="digits-gan", n=200, seed=0)))
    summary = responses[-1].summary
    latents = np.concatenate([from_tensor(r.chunk.latents, field="x") for r in responses[:-1]])
    assert latents.shape == (200, 16) and summary.n == 200
    assert summary.distinct >= 0.9 * 200 and np.unique(latents, axis=0).shape[0] == summary.distinct
    assert summary.sampler == pb.SAMPLER_SMC and summary.choice.startswith("smc: pilot of 200")
    assert summary.ess >= 0.5 * 200 and summary.beta == 1.0 and summary.stopped == "done"
    assert not summary.warnings
