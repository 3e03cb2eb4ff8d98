"""Benchmark generators built in code: random, seeded, nothing downloaded.

Speed does not depend on trained weights, only on the architecture, so the Jacobian benchmarks
(``benchmarks/jacobian.py``) use these instead of checkpoints:

* :func:`dcgan64`: the DCGAN generator of Radford, Metz & Chintala (ICLR 2016, Fig. 1), latent ``(100,)`` ->
  image ``(3, 64, 64)``: ``ConvT(100, 512, 4, 1, 0)`` then ``ConvT(k4, s2, p1)`` 512 -> 256 -> 128 -> 64 -> 3, batch
  norm + ReLU between, Tanh at the end. ``d = 100``, ``D = 12,288``.
* :func:`dcgan256`: the same design with two more upsampling stages, latent ``(512,)`` -> ``(3, 256, 256)``,
  widths 1024 -> 512 -> 256 -> 128 -> 64 -> 32. ``d = 512``, ``D = 196,608``.
* :func:`sd_like_decoder`: a diffusers ``AutoencoderKL`` with Stable Diffusion's decoder widths, latent
  ``(4, h, h)`` -> ``(3, 8h, 8h)``, wrapped by :class:`~gendebias.generators.diffusers_decoder.DiffusersDecoder`
  (plain attention processor, so forward mode works). ``d = 4 h^2``.

Weights follow the DCGAN paper's initialisation (``N(0, 0.02)``; batch-norm scales ``N(1, 0.02)``), and batch norm
runs in eval mode with running statistics calibrated on a seeded batch of latents (cumulative average over one
training-mode pass), so every layer is a non-trivial affine map as in a trained network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from gendebias.generators import Generator

CALIBRATION_LATENTS = 64
"""Latents of the one training-mode pass that sets the batch-norm running statistics."""


class DCGAN(nn.Module):
    """``(N, latent_dim) -> (N, channels, 4 * 2^m, 4 * 2^m)`` for ``m = len(widths)``.

    ``ConvT(latent_dim, widths[0], 4, 1, 0)`` to ``4 x 4``, then ``ConvT(widths[i], widths[i+1], 4, 2, 1)``, each
    followed by ``BatchNorm2d`` and ReLU, and a last ``ConvT(widths[-1], channels, 4, 2, 1)`` + Tanh.
    """

    def __init__(self, *, latent_dim: int, widths: Sequence[int], channels: int = 3) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        previous = latent_dim
        for index, width in enumerate(widths):
            stride, padding = (1, 0) if index == 0 else (2, 1)
            layers += [nn.ConvTranspose2d(previous, width, 4, stride, padding, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU()]
            previous = width
        layers += [nn.ConvTranspose2d(previous, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, latents: Tensor) -> Tensor:
        return self.net(latents.reshape(latents.shape[0], self.latent_dim, 1, 1))


def dcgan(*, latent_dim: int, widths: Sequence[int], seed: int = 0, name: str = "dcgan",
          device: torch.device | str = "cpu") -> Generator:
    """A seeded, calibrated :class:`DCGAN` in eval mode, wrapped as a :class:`Generator` of latents
    ``(latent_dim,)`` with a standard normal prior."""
    torch.manual_seed(seed)
    module = DCGAN(latent_dim=latent_dim, widths=widths)
    _dcgan_init(module)
    calibration = torch.randn(CALIBRATION_LATENTS, latent_dim)
    _calibrate(module.to(device), calibration.to(device))
    return Generator(module, latent_shape=(latent_dim,), kind="gan", name=name,
                     description=f"random DCGAN, widths {list(widths)}")


def dcgan64(*, seed: int = 0, device: torch.device | str = "cpu") -> Generator:
    """The standard DCGAN generator: ``(N, 100) -> (N, 3, 64, 64)``."""
    return dcgan(latent_dim=100, widths=(512, 256, 128, 64), seed=seed, name="dcgan64", device=device)


def dcgan256(*, latent_dim: int = 512, seed: int = 0, device: torch.device | str = "cpu") -> Generator:
    """DCGAN to 256 x 256: ``(N, latent_dim) -> (N, 3, 256, 256)`` through widths 1024 ... 32."""
    return dcgan(latent_dim=latent_dim, widths=(1024, 512, 256, 128, 64, 32), seed=seed,
                 name=f"dcgan256-d{latent_dim}", device=device)


def sd_like_decoder(*, latent_hw: int = 16, block_out_channels: Sequence[int] = (128, 256, 512, 512),
                    layers_per_block: int = 2, norm_num_groups: int = 32, seed: int = 0,
                    device: torch.device | str = "cpu") -> Generator:
    """A randomly initialised ``AutoencoderKL`` decoder, ``(N, 4, h, h) -> (N, 3, f h, f h)``,
    ``f = 2^(len(block_out_channels) - 1)`` (8 with Stable Diffusion's widths).

    Smaller ``block_out_channels`` / ``norm_num_groups`` give a tiny decoder of the same structure (attention in
    the mid block, GroupNorm, SiLU) for smoke runs. Needs ``diffusers``.
    """
    from diffusers import AutoencoderKL

    from gendebias.generators.diffusers_decoder import DiffusersDecoder

    factor = 2 ** (len(block_out_channels) - 1)
    torch.manual_seed(seed)
    autoencoder = cast(nn.Module, AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=tuple(block_out_channels),
        down_block_types=("DownEncoderBlock2D",) * len(block_out_channels),
        up_block_types=("UpDecoderBlock2D",) * len(block_out_channels),
        layers_per_block=layers_per_block, norm_num_groups=norm_num_groups, sample_size=factor * latent_hw,
    ))
    autoencoder.to(device).eval()
    decoder = DiffusersDecoder(autoencoder)
    return Generator(decoder, latent_shape=decoder.latent_shape(), kind="vae", name=f"sd-like-{latent_hw}",
                     description=f"random AutoencoderKL decoder, widths {list(block_out_channels)}")


def _dcgan_init(module: nn.Module) -> None:
    """Radford et al.'s initialisation: conv weights ``N(0, 0.02)``, batch-norm scales ``N(1, 0.02)``, shifts 0."""
    for layer in module.modules():
        if isinstance(layer, nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, 0.0, 0.02)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


def _calibrate(module: nn.Module, latents: Tensor) -> None:
    """Set every batch norm's running statistics to the batch statistics of one training-mode pass."""
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average: one pass sets the statistics exactly
    module.train()
    with torch.no_grad():
        module(latents)
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.momentum = 0.1
    module.eval()
