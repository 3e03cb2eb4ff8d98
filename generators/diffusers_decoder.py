"""Diffusers autoencoder decoders (``AutoencoderKL``, ``VQModel``) as generators of latents ``(C, H, W)``.

The decoder is wrapped as diffusers' pipelines use it: ``decode(latents / scaling_factor + shift_factor)`` (the
shift only where the config has one), output nominally in ``[-1, 1]`` and not clamped (a clamp would zero the
Jacobian of every saturated pixel). Two traps are handled here:

* Attention runs fused SDPA kernels that have no forward-mode rule (``jacfwd`` raises ``NotImplementedError`` for
  ``_scaled_dot_product_flash_attention_for_cpu``): every ``Attention`` block is switched to diffusers' plain
  ``AttnProcessor`` (explicit ``baddbmm`` + softmax), which ``torch.func`` differentiates in both modes.
* A VQ decoder quantises its input by default, which makes it piecewise constant (``J = 0``): it is called with
  ``force_not_quantize=True``, so the map is the continuous decoder of the codebook space.

``diffusers`` is an optional dependency (``pip install gendebias[diffusers]``), imported only here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from gendebias.errors import GeneratorSpecError

DECODER_CLASSES = ("AutoencoderKL", "VQModel")


class DiffusersDecoder(nn.Module):
    """``(N, C, H, W)`` latents -> ``(N, 3, H * f, W * f)`` images through a diffusers autoencoder's decoder."""

    def __init__(self, autoencoder: nn.Module) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        config = autoencoder.config
        self.scaling_factor = float(getattr(config, "scaling_factor", None) or 1.0)
        self.shift_factor = float(getattr(config, "shift_factor", None) or 0.0)
        self.quantized = type(autoencoder).__name__ == "VQModel"
        _use_plain_attention(autoencoder)

    def forward(self, latents: Tensor) -> Tensor:
        scaled = latents / self.scaling_factor + self.shift_factor
        autoencoder: Any = self.autoencoder
        if self.quantized:
            return autoencoder.decode(scaled, force_not_quantize=True).sample
        return autoencoder.decode(scaled).sample

    def latent_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``: latent channels, and the sample size divided by the decoder's upsampling factor."""
        config: Any = self.autoencoder.config
        channels = int(getattr(config, "vq_embed_dim", None) or config.latent_channels)
        sample_size = config.sample_size
        height, width = (sample_size, sample_size) if isinstance(sample_size, int) else tuple(sample_size)
        factor = 2 ** (len(config.block_out_channels) - 1)
        return channels, math.ceil(height / factor), math.ceil(width / factor)


def load_diffusers_decoder(folder: str | Path) -> DiffusersDecoder:
    """Load ``AutoencoderKL`` or ``VQModel`` from a local ``save_pretrained`` folder (never from a hub)."""
    folder = Path(folder)
    class_name = diffusers_class_name(folder)
    if class_name is None:
        raise GeneratorSpecError(f"{folder} is not a diffusers model folder (no config.json with _class_name)")
    if class_name not in DECODER_CLASSES:
        raise GeneratorSpecError(f"{folder} holds a diffusers {class_name}; gendebias loads {list(DECODER_CLASSES)}")
    try:
        import diffusers
    except ImportError:
        raise GeneratorSpecError(
            "loading a diffusers decoder needs the diffusers package: pip install 'gendebias[diffusers]'"
        ) from None
    try:
        model = getattr(diffusers, class_name).from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise GeneratorSpecError(f"could not load the diffusers {class_name} in {folder}: {error}") from error
    return DiffusersDecoder(model.eval())


def diffusers_class_name(folder: Path) -> str | None:
    """The ``_class_name`` in ``folder/config.json``, or None when the folder is not a diffusers model."""
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(config.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    name = data.get("_class_name")
    return name if isinstance(name, str) else None


def _use_plain_attention(autoencoder: nn.Module) -> None:
    from diffusers.models.attention_processor import Attention, AttnProcessor

    for module in autoencoder.modules():
        if isinstance(module, Attention):
            module.set_processor(AttnProcessor())
