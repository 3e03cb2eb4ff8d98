"""The SDK against a real server on a free port, for both ``Client`` and ``AsyncClient`` (fixture ``client``)."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
import torch

from gendebias.clients import AsyncClient, Client, GeneratorInfo
from gendebias.errors import (
    AuthenticationError,
    DeadlineExceededError,
    InvalidArgumentError,
    InvalidLatentsError,
    InvalidTensorError,
    ServiceUnavailableError,
    UnknownGeneratorError,
)
from gendebias.generators import load_generator
from gendebias.geometry import effective_sample_size, log_volume, log_volume_estimate, log_weights


def digits_latents(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, 16)).astype(np.float32)


def test_list_generators_names_the_zoo(client):
    infos = client.list_generators()
    assert all(isinstance(info, GeneratorInfo) for info in infos)
    assert {"digits-gan", "digits-vae", "ramp", "parabola", "tent"} <= {info.generator_id for info in infos}


def test_get_generator_describes_digits_gan(client):
    info = client.get_generator("digits-gan")
    assert info.latent_shape == (16,)
    assert info.output_shape == (1, 8, 8)
    assert info.kind == "gan"
    assert info.piecewise_affine is True
    assert info.prior == "normal"
    assert info.dtype == "float32"
    assert info.classes is None
    ramp = client.get_generator("ramp")
    assert ramp.prior == "uniform" and ramp.prior_parameters == {"low": -1.0, "high": 1.0}


def test_log_volumes_equal_the_in_process_computation_bit_for_bit(client):
    latents = digits_latents(5)
    expected = log_volume(load_generator("digits-gan"), torch.from_numpy(latents)).numpy()
    result = client.log_volumes("digits-gan", latents)
    assert result.log_volumes.dtype == np.float64
    assert np.array_equal(result.log_volumes, expected)
    assert result.singular_values is None and result.tile_codes is None


def test_estimators_and_precision_travel_and_say_what_ran(client):
    latents = digits_latents(6, seed=4)
    generator = load_generator("digits-gan")
    expected = log_volume_estimate(generator, torch.from_numpy(latents), method="randomized", top_k=6, seed=3)
    result = client.log_volumes("digits-gan", latents, method="randomized", top_k=6, seed=3)
    assert (result.method, result.precision, result.products) == ("randomized", "fp32", expected.products)
    assert np.array_equal(result.log_volumes, expected.log_volume.numpy())
    assert np.array_equal(result.errors, expected.error.numpy())
    projected = client.log_volumes("digits-gan", latents, method="projection", projection_dim=48, seed=1)
    exact = client.log_volumes("digits-gan", latents)
    assert projected.method == "projection" and projected.products == 48
    assert np.all(np.abs(projected.log_volumes - exact.log_volumes) < 6 * projected.errors)
    assert exact.method == "exact" and np.array_equal(exact.errors, np.zeros(6))
    reduced = client.log_volumes("digits-gan", latents, precision="bf16")
    assert reduced.precision == "bf16" and np.isnan(reduced.errors).all()
    assert np.abs(reduced.log_volumes - exact.log_volumes).mean() < 0.2
    with pytest.raises(InvalidArgumentError, match="unknown precision 'fp16'"):
        client.log_volumes("digits-gan", latents, precision="fp16")
    with pytest.raises(InvalidArgumentError, match="pass top_k"):
        client.log_volumes("digits-gan", latents, method="randomized")


def test_log_volumes_return_singular_values_and_tile_codes_when_asked(client):
    result = client.log_volumes("digits-gan", digits_latents(3), singular_values=True, tile_codes=True, top_k=4)
    assert result.singular_values.shape == (3, 4)
    assert np.all(np.diff(result.singular_values, axis=1) <= 0)
    assert result.tile_codes.shape == (3,) and result.tile_codes.dtype == np.int64
    np.testing.assert_allclose(result.log_volumes, np.log(result.singular_values).sum(axis=1), rtol=1e-9)


def test_a_request_over_4_mib_is_streamed_in_chunks(client):
    latents = np.random.default_rng(1).uniform(-1.0, 1.0, (270_000, 2))
    assert latents.nbytes > 4 * 2**20
    result = client.log_volumes("ramp", latents)
    assert result.log_volumes.shape == (270_000,)
    # the ramp (z1, z2, 3 relu(z1)) stretches area by sqrt(10) where z1 > 0 and not at all elsewhere
    expected = np.where(latents[:, 0].astype(np.float32) > 0, 0.5 * math.log(10.0), 0.0)
    np.testing.assert_allclose(result.log_volumes, expected, atol=1e-6)


def test_reweight_returns_normalised_weights_and_the_in_process_ess(client):
    latents = digits_latents(200, seed=2)
    result = client.reweight("digits-gan", latents, rho=0.5)
    assert result.log_weights.shape == result.log_volumes.shape == (200,)
    assert abs(float(np.logaddexp.reduce(result.log_weights))) < 1e-12
    weights = log_weights(log_volume(load_generator("digits-gan"), torch.from_numpy(latents)), rho=0.5)
    assert result.ess == pytest.approx(effective_sample_size(weights), rel=1e-9)
    assert result.max_weight == pytest.approx(float(np.exp(result.log_weights).max()), rel=1e-9)


def test_reweight_with_a_log_proposal_and_the_uniform_target(client):
    """Latents from a Gaussian truncated to the box: ``log_w = log_volume - log q``, against the ramp's closed form."""
    raw = np.random.default_rng(3).normal(0.0, 0.5, (400, 2))
    latents = raw[(np.abs(raw) <= 1).all(axis=1)][:100]
    log_proposal = -(latents**2).sum(axis=1) / (2 * 0.5**2)
    result = client.reweight("ramp", latents, target="uniform", log_proposal=log_proposal)
    exact_volumes = np.where(latents[:, 0] > 0, 0.5 * math.log(10.0), 0.0)
    expected = exact_volumes - log_proposal
    expected -= np.logaddexp.reduce(expected)
    np.testing.assert_allclose(result.log_volumes, exact_volumes, atol=1e-12)
    np.testing.assert_allclose(result.log_weights, expected, atol=1e-9)
    assert result.ess == pytest.approx(1 / float(np.exp(2 * expected).sum()), rel=1e-9)


def test_resample_is_reproducible_by_seed(client):
    first = client.resample("digits-gan", 40, seed=7, proposals=400, sampler="sir")
    again = client.resample("digits-gan", 40, seed=7, proposals=400, sampler="sir")
    other = client.resample("digits-gan", 40, seed=8, proposals=400, sampler="sir")
    assert first.latents.shape == (40, 16)
    assert np.array_equal(first.latents, again.latents)
    assert np.array_equal(first.indices, again.indices)
    assert not np.array_equal(first.latents, other.latents)
    assert first.seed == 7 and first.proposals == 400 and first.scheme == "multinomial" and first.sampler == "sir"
    assert first.outputs is None
    assert 1 <= first.distinct <= 40 and math.isnan(first.acceptance_rate)


def test_resample_returns_outputs_when_asked(client):
    result = client.resample("digits-gan", 12, seed=0, return_outputs=True, scheme="systematic", rho=0.2,
                             sampler="sir")
    assert result.outputs.shape == (12, 1, 8, 8)
    assert result.scheme == "systematic"


def test_unknown_generator_raises_unknown_generator_error(client):
    with pytest.raises(UnknownGeneratorError) as caught:
        client.get_generator("no-such-generator")
    assert isinstance(caught.value, LookupError)
    assert "no-such-generator" in str(caught.value)
    with pytest.raises(UnknownGeneratorError):
        client.log_volumes("no-such-generator", digits_latents(2))


def test_nan_latents_raise_invalid_latents_error_naming_the_field(client):
    latents = digits_latents(3)
    latents[1, 4] = np.nan
    with pytest.raises(InvalidLatentsError) as caught:
        client.log_volumes("digits-gan", latents)
    assert caught.value.field == "latents"


def test_wrong_latent_dimension_is_an_invalid_argument(client):
    with pytest.raises((InvalidLatentsError, InvalidTensorError)) as caught:
        client.reweight("digits-gan", np.zeros((4, 3), dtype=np.float32))
    assert isinstance(caught.value, InvalidArgumentError) and isinstance(caught.value, ValueError)
    assert caught.value.field


def test_client_side_mistakes_are_caught_before_the_call(client):
    with pytest.raises(InvalidArgumentError, match="multinomial"):
        client.resample("digits-gan", 5, scheme="multinominal")
    with pytest.raises(InvalidArgumentError, match="tilted"):
        client.reweight("digits-gan", digits_latents(2), target="flat")
    with pytest.raises(InvalidLatentsError, match=r"z\[None\]"):
        client.log_volumes("digits-gan", np.zeros(16, dtype=np.float32))
    with pytest.raises(InvalidArgumentError, match="seed"):
        client.resample("digits-gan", 5, seed=-1)


def test_a_missing_token_is_refused_and_the_right_one_accepted(connect, token_target, token):
    with pytest.raises(AuthenticationError) as caught:
        connect(token_target).list_generators()
    assert isinstance(caught.value, PermissionError)
    with pytest.raises(AuthenticationError):
        connect(token_target, token="wrong").get_generator("ramp")
    assert connect(token_target, token=token).get_generator("ramp").latent_shape == (2,)


def test_tls_with_the_server_certificate_as_root(connect, tls_target, tls_files):
    certificate, _ = tls_files
    secure = connect(tls_target, root_certificates=certificate.read_bytes())
    assert secure.get_generator("ramp").latent_shape == (2,)
    with pytest.raises(ServiceUnavailableError):
        connect(tls_target, timeout=5).get_generator("ramp")


def test_health_reports_serving(client):
    assert client.health() == "SERVING"


def test_a_passed_deadline_raises_deadline_exceeded(connect, target):
    with pytest.raises(DeadlineExceededError) as caught:
        connect(target, timeout=1e-4).resample("digits-gan", 1000)
    assert isinstance(caught.value, TimeoutError)


def test_an_unreachable_server_raises_service_unavailable(connect):
    with pytest.raises(ServiceUnavailableError, match=r"127\.0\.0\.1:1"):
        connect("127.0.0.1:1", timeout=10).list_generators()


def test_one_async_client_serves_concurrent_calls(target):
    async def run() -> list[float]:
        async with AsyncClient(target) as client:
            results = await asyncio.gather(*(client.log_volumes("digits-gan", digits_latents(4, seed)) for seed in
                                             range(3)))
        return [float(result.log_volumes.sum()) for result in results]

    sums = asyncio.run(run())
    with Client(target) as client:
        assert sums == [float(client.log_volumes("digits-gan", digits_latents(4, seed)).log_volumes.sum())
                        for seed in range(3)]


def test_smc_and_mcmc_samplers_through_the_sdk(client):
    """The tent toy on its uniform box: SMC/MCMC report their traces, and the same seed gives the same latents."""
    smc = client.resample("tent", 100, sampler="smc", target="uniform", seed=3)
    assert smc.latents.shape == (100, 2) and smc.sampler == "smc" and smc.stopped == "done"
    assert smc.log_weights is None and smc.indices is None
    assert smc.diagnostics["schedule"][-1] == 1.0 and min(smc.diagnostics["ess_history"]) >= 30
    assert np.array_equal(smc.latents, client.resample("tent", 100, sampler="smc", target="uniform", seed=3).latents)
    mcmc = client.resample("tent", 100, sampler="mcmc", target="uniform", seed=3, particles=10, max_evaluations=300)
    assert mcmc.sampler == "mcmc" and mcmc.stopped == "max_evaluations" and mcmc.evaluations <= 300
    assert 0 < mcmc.diagnostics["acceptance_rates"][0] < 1


def test_progress_is_streamed_and_a_budget_stop_warns(client):
    seen = []
    result = client.resample("tent", 300, target="uniform", sampler="smc", seed=3, progress=seen.append)
    assert [p.beta for p in seen] == result.diagnostics["schedule"] and seen[-1].beta == 1.0
    assert [p.step for p in seen] == list(range(1, len(seen) + 1)) and seen[-1].evaluations == result.evaluations
    assert all(p.sampler == "smc" and p.seconds >= 0 for p in seen)
    with pytest.warns(UserWarning, match="stopped by max_evaluations at beta"):
        stopped = client.resample("digits-gan", 200, sampler="smc", seed=0, rho=3.0, max_evaluations=600)
    assert stopped.stopped == "max_evaluations" and 0 <= stopped.beta < 1 and stopped.warnings
