"""The Jacobian engine on a CUDA device: exactness in fp32, TF32 kept off, real out-of-memory recovery, nothing
left allocated after an error. Skipped without a GPU (the same code paths run on CPU in the other tests)."""

import pytest
import torch
from torch import nn

from gendebias.errors import DeviceMemoryError
from gendebias.geometry import log_volume
from gendebias.geometry.volume import log_volume_estimate

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def conv_generator(device, dtype=torch.float32):
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.ConvTranspose2d(32, 64, 4, 1, 0, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.ConvTranspose2d(32, 3, 4, 2, 1), nn.Tanh(),
    ).eval()
    return module.to(device=device, dtype=dtype)


def test_fp32_exact_on_cuda_matches_float64_on_cpu_with_tf32_forced_on_outside():
    torch.backends.cudnn.allow_tf32 = True  # torch's default: the exact path must switch it off itself
    latents = torch.randn(16, 32, 1, 1)
    reference = log_volume(conv_generator("cpu", torch.float64), latents.double())
    estimate = log_volume_estimate(conv_generator("cuda"), latents.cuda())
    assert estimate.precision == "fp32"
    assert (estimate.log_volume.cpu() - reference).abs().max() < 1e-3  # TF32 convolutions give ~6e-2
    assert torch.backends.cudnn.allow_tf32, "the caller's flag is restored"


def test_a_real_out_of_memory_halves_and_leaves_nothing_allocated():
    generator = conv_generator("cuda")
    latents = torch.randn(4096, 32, 1, 1, device="cuda")  # Jacobians alone: 4096 x 768 x 32 x 4 B = 400 MB
    expected = log_volume(generator, latents[:8])
    free, _ = torch.cuda.mem_get_info()
    filler = torch.empty(max(0, free - 256 * 2**20), dtype=torch.uint8, device="cuda")  # leave ~256 MiB
    baseline = torch.cuda.memory_allocated()
    estimate = log_volume_estimate(generator, latents, memory_budget=2**40)  # a plan far beyond the device
    assert estimate.chunking.latents < 4096, "the plan was halved after a real CUDA OOM"
    torch.testing.assert_close(estimate.log_volume[:8], expected, rtol=0, atol=1e-6)
    del estimate
    assert torch.cuda.memory_allocated() == baseline
    del filler


def test_nothing_fits_is_a_clear_error_and_frees_the_device():
    def generator(latents):  # a 2 GiB intermediate per latent
        return latents.repeat(1, 2**24)[:, :64]

    free, _ = torch.cuda.mem_get_info()
    filler = torch.empty(max(0, free - 256 * 2**20), dtype=torch.uint8, device="cuda")  # leave ~256 MiB
    baseline = torch.cuda.memory_allocated()
    with pytest.raises(DeviceMemoryError):
        log_volume(generator, torch.randn(4, 32, device="cuda"), memory_budget=2**40)
    assert torch.cuda.memory_allocated() == baseline
    del filler
