import pytest
import torch

from gendebias.errors import InvalidArgumentError
from gendebias.generators import load_generator
from gendebias.geometry.products import Backward, batched_function, vjp_operator
from gendebias.geometry.volume import log_volume_estimate


def spectrum_map(sigmas, output_dim=200, seed=0):
    """``A = U diag(sigmas) V^T`` with random orthonormal ``U, V``: a linear generator of known spectrum."""
    generator = torch.Generator().manual_seed(seed)
    u = torch.linalg.qr(torch.randn(output_dim, len(sigmas), generator=generator, dtype=torch.float64)).Q
    v = torch.linalg.qr(torch.randn(len(sigmas), len(sigmas), generator=generator, dtype=torch.float64)).Q
    matrix = u @ torch.diag(torch.tensor(sigmas, dtype=torch.float64)) @ v.T
    return lambda z: z @ matrix.T


@pytest.mark.parametrize("decay", [0.9, 0.95, 0.98])
def test_power_iterations_converge_and_the_reported_error_covers_the_gap(decay):
    sigmas = [decay**i for i in range(60)]
    truth = sum(torch.log(torch.tensor(sigmas[:10], dtype=torch.float64)))
    latents = torch.randn(2, 60, dtype=torch.float64)
    gaps = []
    for power_iterations in (0, 1, 2, 3):
        estimate = log_volume_estimate(spectrum_map(sigmas), latents, method="randomized", top_k=10,
                                       oversampling=5, power_iterations=power_iterations)
        gap = truth - estimate.log_volume
        assert bool((gap >= -1e-10).all()), "sigma_i(Q^T J) <= sigma_i(J): every iterate is a lower bound"
        if power_iterations:
            assert bool((gap <= estimate.error).all()), "the last step's change bounds what is left"
        else:
            assert bool(estimate.error.isnan().all())
        assert estimate.products == 2 * (power_iterations + 1) * 15
        gaps.append(float(gap.max()))
    assert gaps == sorted(gaps, reverse=True) and gaps[2] < 0.2  # measured 1.7, 0.49, 0.17, 0.07 at decay 0.98


def test_trained_gan_top_k_within_a_hundredth_of_a_nat_with_two_power_iterations():
    generator = load_generator("digits-gan")
    latents = generator.sample_latents(24, seed=1)
    exact = log_volume_estimate(generator, latents, top_k=8)
    estimate = log_volume_estimate(generator, latents, method="randomized", top_k=8, oversampling=4)
    error = (estimate.log_volume - exact.log_volume).abs()
    assert float(error.max()) < 0.01  # measured mean 1e-5, max 3e-4 nats
    assert bool((error <= estimate.error + 1e-9).all())


def test_answers_do_not_depend_on_chunking_and_repeat_with_the_seed():
    sigmas = [0.9**i for i in range(30)]
    latents = torch.randn(5, 30, dtype=torch.float64)
    whole = log_volume_estimate(spectrum_map(sigmas), latents, method="randomized", top_k=4, seed=7)
    single = log_volume_estimate(spectrum_map(sigmas), latents, method="randomized", top_k=4, seed=7, chunk_size=1)
    torch.testing.assert_close(single.log_volume, whole.log_volume, rtol=0, atol=1e-12)
    other = log_volume_estimate(spectrum_map(sigmas), latents, method="randomized", top_k=4, seed=8)
    assert not torch.equal(other.log_volume, whole.log_volume)


def test_randomized_needs_top_k_and_sane_knobs(mlp):
    latents = torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(InvalidArgumentError, match="method='randomized' estimates the top_k largest"):
        log_volume_estimate(mlp([3, 8]), latents, method="randomized")
    with pytest.raises(InvalidArgumentError, match="power_iterations must be a non-negative int"):
        log_volume_estimate(mlp([3, 8]), latents, method="randomized", top_k=2, power_iterations=-1)
    with pytest.raises(TypeError, match="projection_dim"):
        log_volume_estimate(mlp([3, 8]), latents, method="randomized", top_k=2, projection_dim=4)


class Doubling(torch.autograd.Function):
    """``2 x`` whose backward, like GroupNorm's on a channels-last input, refuses vmap while grad mode is off."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return 2 * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        if not torch.is_grad_enabled():
            raise RuntimeError("NYI: querying is_contiguous inside of vmap for memory_format other than contiguous")
        return 2 * grad


def test_vjps_step_down_to_a_mode_that_runs_and_remember_it():
    matrix = torch.randn(7, 3, dtype=torch.float64)
    latents = torch.randn(4, 3, dtype=torch.float64)
    cotangents = torch.randn(5, 4, 7, dtype=torch.float64)
    backward = Backward()
    pullback = vjp_operator(batched_function(lambda z: Doubling.apply(z @ matrix.T), (3,)), latents, backward)
    torch.testing.assert_close(pullback(cotangents, 2), 2 * cotangents @ matrix, rtol=0, atol=1e-12)
    assert backward.mode == "vmap_with_grad"
    for mode in ("vmap", "loop"):
        plain = vjp_operator(batched_function(lambda z: z @ matrix.T, (3,)), latents, Backward(mode))
        torch.testing.assert_close(plain(cotangents, 2), cotangents @ matrix, rtol=0, atol=1e-12)
