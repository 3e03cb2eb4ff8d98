import pytest
import torch
from scipy.stats import spearmanr

from gendebias.errors import InvalidArgumentError
from gendebias.generators import load_generator
from gendebias.geometry.precision import lowered, precision_mode
from gendebias.geometry.volume import log_volume_estimate


@pytest.fixture
def tf32_flags():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_fp32_turns_tf32_off_inside_and_restores_the_flags_even_after_an_error(tf32_flags):
    torch.backends.cudnn.allow_tf32 = True  # torch's default: convolutions silently in TF32
    torch.backends.cuda.matmul.allow_tf32 = True
    with precision_mode("fp32", torch.device("cpu")):
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    with pytest.raises(RuntimeError, match="boom"), precision_mode("tf32", torch.device("cpu")):
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        raise RuntimeError("boom")
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32


def test_tf32_on_a_cpu_reports_what_really_ran():
    generator = load_generator("digits-gan")
    estimate = log_volume_estimate(generator, generator.sample_latents(4, seed=0), precision="tf32")
    assert estimate.precision == "fp32", "TF32 exists on Ampere+ GPUs only"
    assert torch.equal(estimate.error, torch.zeros(4, dtype=torch.float64))


def test_bf16_products_stay_within_a_tenth_of_a_nat_with_a_float64_gram():
    generator = load_generator("digits-gan")
    latents = generator.sample_latents(120, seed=3)
    exact = log_volume_estimate(generator, latents)
    reduced = log_volume_estimate(generator, latents, precision="bf16")
    error = (reduced.log_volume - exact.log_volume).abs()
    assert reduced.precision == "bf16" and bool(reduced.error.isnan().all()), "bf16 error is not estimated"
    assert float(error.mean()) < 0.1, f"mean |error| {float(error.mean()):.3f} nats"  # measured 0.062
    assert float(error.mean()) > 1e-3, "bf16 must really have run in bfloat16"
    assert spearmanr(reduced.log_volume, exact.log_volume).statistic > 0.99


def test_bf16_leaves_the_callers_module_alone():
    generator = load_generator("digits-gan")
    before = {name: value.clone() for name, value in generator.state_dict().items()}
    output = lowered(generator, "bf16")(generator.sample_latents(2, seed=0))
    assert output.dtype == torch.float32
    assert all(torch.equal(before[name], value) for name, value in generator.state_dict().items())


def test_reduced_precision_needs_a_float32_generator(mlp):
    latents = torch.randn(2, 2, dtype=torch.float64)
    with pytest.raises(InvalidArgumentError, match="precision 'bf16' lowers float32 arithmetic"):
        log_volume_estimate(mlp([2, 3]), latents, precision="bf16")
    with pytest.raises(InvalidArgumentError, match="unknown precision 'fp8'"):
        log_volume_estimate(mlp([2, 3]), latents, precision="fp8")
