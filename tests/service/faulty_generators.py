"""Generators that misbehave on purpose, registered by the fault tests only (never in a registry file).

Each is the linear map ``G(z) = A z`` with a fixed ``A`` ``(6, 4)``, so every well-behaved latent has the same
log-volume ``sum_i log sigma_i(A)`` (the oracle the tests compare with), except where it fails:

- ``raising``: an out-of-range index (``RuntimeError`` from inside the forward pass) for latents with ``z[0] > 3``;
- ``nan``: NaN outputs (and Jacobians) for latents with ``z[0] > 3``;
- ``oom``: ``torch.OutOfMemoryError`` on every call once ``armed`` (an injected device out-of-memory);
- ``gated``: blocks every call between ``hold()`` and ``release()`` (at most 60 s), to hold the device thread;
  ``entered`` is set once a call is blocked.

``z[0] > 3`` happens for 0.13% of standard normal latents: a test sends ``z[0] = 10`` to trigger a failure.
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor, nn

from gendebias.generators import Generator

THRESHOLD = 3.0
MATRIX = torch.linspace(-1.0, 1.0, 24).reshape(6, 4) + 2.0 * torch.eye(6, 4)
LOG_VOLUME = float(torch.linalg.svdvals(MATRIX.double()).log().sum())


class Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("matrix", MATRIX.clone())

    def forward(self, latents: Tensor) -> Tensor:
        return latents @ self.matrix.T


class Raising(Linear):
    def forward(self, latents: Tensor) -> Tensor:
        flagged = (latents[..., 0] > THRESHOLD).long() * 2**20  # an index far out of range where flagged
        return super().forward(latents) + torch.zeros(1, dtype=latents.dtype).index_select(0, flagged)[..., None]


class NotANumber(Linear):
    def forward(self, latents: Tensor) -> Tensor:
        factor = torch.where(latents[..., :1] > THRESHOLD, torch.nan, 1.0)
        return super().forward(latents) * factor


class OutOfMemory(Linear):
    armed = False

    def forward(self, latents: Tensor) -> Tensor:
        if self.armed:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
        return super().forward(latents)


class Gated(Linear):
    armed = False

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.entered = threading.Event(), threading.Event()

    def hold(self) -> None:
        """Block the next calls until :meth:`release`."""
        self.gate.clear()
        self.entered.clear()
        self.armed = True

    def release(self) -> None:
        self.armed = False
        self.gate.set()

    def forward(self, latents: Tensor) -> Tensor:
        if self.armed:
            self.entered.set()
            self.gate.wait(60)
        return super().forward(latents)


def faulty_generators() -> dict[str, Generator]:
    """``linear`` (well-behaved), ``raising``, ``nan``, ``oom`` (disarmed) and ``gated`` (open), built now."""
    modules = {"linear": Linear(), "raising": Raising(), "nan": NotANumber(), "oom": OutOfMemory(),
               "gated": Gated()}
    return {name: Generator(module, latent_shape=(4,), name=name) for name, module in modules.items()}


def flagged_latents(count: int, seed: int = 0) -> Tensor:
    """``count`` latents, the first of which has ``z[0] = 10`` (a faulty generator fails on it)."""
    latents = torch.randn(count, 4, generator=torch.Generator().manual_seed(seed)).clamp(-2.0, 2.0)
    latents[0, 0] = 10.0
    return latents
