import math

import pytest
import torch
from torch import nn

from gendebias.errors import GeneratorModeError, GeneratorSpecError, InvalidArgumentError
from gendebias.generators import Generator, UniformBox
from gendebias.geometry import log_volume


def mlp(latent_dim=3, output=12):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(latent_dim, 16), nn.LeakyReLU(0.2), nn.Linear(16, output),
                         nn.Unflatten(1, (3, 2, 2))).eval()


class Conditional(nn.Module):
    """``G(z, y) = W (z * scale_y)``: the class scales the latent, so log-volumes differ by class analytically."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([1.0, 2.0, 4.0]), requires_grad=False)
        self.weight = nn.Parameter(torch.randn(5, 2, generator=torch.Generator().manual_seed(0)))

    def forward(self, latents, labels):
        return (latents * self.scale[labels][:, None]) @ self.weight.T


def test_metadata_is_detected_not_assumed():
    generator = Generator(mlp(), latent_shape=(3,), name="tiny", kind="vae", prior=UniformBox())
    info = generator.info()
    assert (info.output_shape, info.latent_shape, info.kind, info.dtype) == ((3, 2, 2), (3,), "vae", "float32")
    assert info.piecewise_affine and info.prior == {"name": "uniform", "low": -1.0, "high": 1.0}
    smooth = Generator(nn.Sequential(nn.Linear(3, 4), nn.Tanh()).eval(), latent_shape=(3,))
    assert not smooth.piecewise_affine and smooth.info().smooth_operations == ("tanh",)


def test_sample_latents_and_log_prior():
    generator = Generator(mlp(), latent_shape=(3,))
    latents = generator.sample_latents(6, seed=3)
    assert latents.shape == (6, 3) and latents.dtype == torch.float32
    assert torch.equal(latents, generator.sample_latents(6, seed=3))
    expected = -0.5 * (latents.double() ** 2).sum(1) - 1.5 * math.log(2 * math.pi)
    torch.testing.assert_close(generator.log_prior(latents), expected)


def test_wrong_latent_shape_is_a_clear_error():
    generator = Generator(mlp(), latent_shape=(3,), name="tiny")
    with pytest.raises(InvalidArgumentError, match=r"tiny takes latents of shape \(N, 3\), got \(2, 4\)"):
        generator(torch.zeros(2, 4))
    with pytest.raises(GeneratorSpecError, match=r"failed on a latent of shape .*Check latent_shape"):
        Generator(mlp(), latent_shape=(5,))


def test_random_noise_is_refused_until_frozen():
    class Noisy(nn.Module):
        def forward(self, latents, noise_mode="random"):
            noise = torch.randn_like(latents) if noise_mode == "random" else torch.zeros_like(latents)
            return torch.cat([latents, latents + noise], dim=1)

    with pytest.raises(GeneratorModeError, match="different outputs for the same latent"):
        Generator(Noisy(), latent_shape=(2,))
    frozen = Generator(Noisy(), latent_shape=(2,), frozen_noise=True, call_kwargs={"noise_mode": "const"})
    assert frozen.info().frozen_noise
    assert log_volume(frozen, frozen.sample_latents(3, seed=0).double()).allclose(
        torch.tensor(0.5 * math.log(4.0), dtype=torch.float64).expand(3))


def test_conditional_generator_is_differentiated_per_class():
    generator = Generator(Conditional(), latent_shape=(2,), classes=3, name="cond")
    latents = generator.sample_latents(4, seed=0)
    base = torch.linalg.svdvals(generator.module.weight.detach().double()).log().sum()
    for label, scale in enumerate([1.0, 2.0, 4.0]):
        expected = base + 2 * math.log(scale)
        torch.testing.assert_close(log_volume(generator.condition(label), latents),
                                   expected.expand(4), rtol=1e-5, atol=0)
    with pytest.raises(InvalidArgumentError, match=r"conditional on 3 classes: pass labels, or use .condition"):
        generator(latents)
    with pytest.raises(InvalidArgumentError, match=r"label must be an int in \[0, 3\)"):
        generator.condition(3)
