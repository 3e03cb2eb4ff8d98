"""Arithmetic precision of the Jacobian-vector products: ``"fp32"``, ``"tf32"`` or ``"bf16"``.

Only the products (the generator's forward passes) change precision; Gram matrices, factorisations and singular
values are always float64 (:mod:`gendebias.geometry.volume`). Measurements reported from an H200 (not reproduced in
``benchmarks/RESULTS.md`` yet): TF32 and bf16 products ran ~3x faster with 0.06-0.08 nats of error in
``log det(J^T J)``, and a float32 Gram lost up to 2.6 nats at condition 1e2, so the Gram never follows the
products down. (Measured here on CPU: bf16 mean error 0.06 nats on ``digits-gan`` and ``dcgan64``,
``benchmarks/RESULTS.md``.)

* ``fp32``: exact float32 arithmetic. TF32 is switched *off* for both matmuls and cuDNN convolutions while the
  products run: ``torch.backends.cudnn.allow_tf32`` defaults to True, which silently turns convolution error from
  ~6e-6 into ~6e-2 nats (the same H200 measurements).
* ``tf32``: TF32 tensor cores for float32 matmuls and convolutions (NVIDIA Ampere and newer; elsewhere it is
  float32, and :func:`effective_precision` says so).
* ``bf16``: the module's floating parameters and buffers are cast to bfloat16 (copies through
  ``torch.func.functional_call``; the caller's module is untouched), the latents too, and ``torch.autocast``
  keeps the ops it lists as float32 (reductions, normalisations) in float32; outputs return as float32. Casting
  the weights is not optional: CPU autocast alone fails under ``jvp`` on a bias-free ``ConvTranspose2d`` (float32
  input against its bfloat16 weight copy). A plain callable (no module) gets autocast alone.

The flags are process-wide torch settings; :func:`precision_mode` restores them on exit, errors included.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
from torch import Tensor, nn

from gendebias.errors import InvalidArgumentError
from gendebias.geometry._inputs import GeneratorLike, check_choice

Precision = Literal["fp32", "tf32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "tf32", "bf16")


def check_precision(precision: str, dtype: torch.dtype) -> None:
    """Refuse unknown precisions, and reduced precision for generators that do not compute in float32."""
    check_choice("precision", precision, PRECISIONS)
    if precision != "fp32" and dtype != torch.float32:
        raise InvalidArgumentError(
            f"precision {precision!r} lowers float32 arithmetic, but the latents are {dtype}; "
            "use precision='fp32' or a float32 generator"
        )


def effective_precision(precision: Precision, device: torch.device) -> Precision:
    """The precision the products really run in: ``tf32`` needs a CUDA device of compute capability >= 8."""
    if precision == "tf32" and not (device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8):
        return "fp32"
    return precision


def lowered(generator: GeneratorLike, precision: Precision) -> GeneratorLike:
    """``generator`` computing in bfloat16 when ``precision == "bf16"`` (see the module docstring), else itself."""
    module = generator if isinstance(generator, nn.Module) else None
    if precision != "bf16" or module is None:
        return generator
    state = {name: value.to(torch.bfloat16) if value.is_floating_point() else value
             for name, value in [*module.named_parameters(), *module.named_buffers()]}

    def in_bfloat16(latents: Tensor) -> Tensor:
        output = torch.func.functional_call(module, state, (latents.to(torch.bfloat16),))
        return output.to(latents.dtype)

    return in_bfloat16


@contextmanager
def precision_mode(precision: Precision, device: torch.device) -> Iterator[None]:
    """Run the enclosed products in ``precision`` on ``device``; restores torch's TF32 flags afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        if precision == "bf16":
            with torch.autocast(device.type, dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
