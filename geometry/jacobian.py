"""Batched Jacobians of a generator, one per latent.

For ``G: R^d -> R^D`` and latents ``z_1..z_N``, returns ``J(z_n) = dG/dz (z_n)`` of shape ``(N, D, d)``,
computed with ``torch.func``: ``vmap`` over latents of ``jacfwd`` (``d`` Jacobian-vector products per latent,
the cheap direction when ``D >= d``, which is every generator) or ``jacrev`` (``D`` vector-Jacobian products).
Latents are processed ``chunk_size`` at a time, so the working memory of the transform is bounded by the chunk,
not by ``N``; the consumers in :mod:`gendebias.geometry.volume` reduce each chunk before the next one runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Literal

import torch
from torch import Tensor
from torch.func import jacfwd, jacrev, vmap

from gendebias.errors import NumericalError
from gendebias.geometry._inputs import (
    GeneratorLike,
    check_choice,
    check_chunk_size,
    check_generator,
    check_latents,
    chunks,
    flat_function,
)

Mode = Literal["auto", "forward", "reverse"]
TRANSFORMS: dict[str, Callable[..., Callable[[Tensor], Tensor]]] = {"forward": jacfwd, "reverse": jacrev}

DEFAULT_CHUNK_BYTES = 256 * 2**20
"""Budget for one chunk's Jacobians when ``chunk_size`` is None: ``chunk * D * d * itemsize`` stays below it."""


def jacobian(generator: GeneratorLike, latents: Tensor, *, mode: Mode = "auto",
             chunk_size: int | None = None) -> Tensor:
    """Jacobians of ``generator`` at each latent.

    Args:
        generator: a ``Generator`` or callable mapping ``(N, *latent_shape)`` to ``(N, *output_shape)``;
            modules with batch norm or dropout must be in eval mode.
        latents: ``(N, *latent_shape)`` floating tensor, finite, same dtype and device as the generator.
        mode: ``"forward"`` (``jacfwd``), ``"reverse"`` (``jacrev``) or ``"auto"`` (forward when ``D >= d``).
        chunk_size: latents per vmapped batch; None picks one from :data:`DEFAULT_CHUNK_BYTES`.

    Returns:
        ``(N, D, d)`` tensor in the generator's output dtype, ``D = prod(output_shape)``,
        ``d = prod(latent_shape)``; column ``j`` differentiates with respect to ``latents.flatten(1)[:, j]``.
    """
    blocks = list(jacobian_chunks(generator, latents, mode=mode, chunk_size=chunk_size))
    return torch.cat(blocks) if len(blocks) > 1 else blocks[0]


def jacobian_chunks(generator: GeneratorLike, latents: Tensor, *, mode: Mode = "auto",
                    chunk_size: int | None = None) -> Iterator[Tensor]:
    """Yield the Jacobians of consecutive chunks of ``latents``, each ``(chunk, D, d)``.

    Always yields at least one block (an empty ``(0, D, d)`` one when ``N == 0``).
    """
    check_choice("mode", mode, ["auto", *TRANSFORMS])
    check_chunk_size(chunk_size)
    check_latents(latents)
    check_generator(generator, latents)
    latent_shape = tuple(latents.shape[1:])
    latent_dim = math.prod(latent_shape)
    output_dim, itemsize = _output_size(generator, latents)
    if mode == "auto":
        mode = "forward" if output_dim >= latent_dim else "reverse"
    if chunk_size is None:
        chunk_size = default_chunk_size(output_dim, latent_dim, itemsize)
    per_latent_jacobian = vmap(TRANSFORMS[mode](flat_function(generator, latent_shape)))
    if latents.shape[0] == 0:
        yield latents.new_zeros((0, output_dim, latent_dim))
        return
    start = 0
    for chunk in chunks(latents, chunk_size):
        block = _jacobian_block(per_latent_jacobian, chunk)
        _check_finite(block, start)
        start += chunk.shape[0]
        yield block


def default_chunk_size(output_dim: int, latent_dim: int, itemsize: int) -> int:
    """Latents per chunk so that one chunk's ``(chunk, D, d)`` Jacobians fit :data:`DEFAULT_CHUNK_BYTES`."""
    return max(1, DEFAULT_CHUNK_BYTES // max(1, output_dim * latent_dim * itemsize))


def _jacobian_block(per_latent_jacobian: Callable[[Tensor], Tensor], chunk: Tensor) -> Tensor:
    with torch.no_grad():
        return per_latent_jacobian(chunk.flatten(1))


def _output_size(generator: GeneratorLike, latents: Tensor) -> tuple[int, int]:
    """``(D, itemsize)`` of the generator's output, from one forward pass on one latent."""
    probe = latents[:1] if latents.shape[0] else latents.new_zeros((1, *latents.shape[1:]))
    with torch.no_grad():
        output = generator(probe)
    if not isinstance(output, Tensor) or output.ndim < 1 or output.shape[0] != 1:
        raise NumericalError(
            "generator must return a tensor of shape (N, *output_shape) for latents of shape (N, ...); "
            f"for one latent it returned {getattr(output, 'shape', type(output).__name__)}"
        )
    return output[0].numel(), output.element_size()


def _check_finite(block: Tensor, start: int) -> None:
    bad = ~torch.isfinite(block.flatten(1)).all(dim=1)
    if bool(bad.any()):
        rows = (bad.nonzero().flatten()[:10] + start).tolist()
        raise NumericalError(
            f"the generator's Jacobian is NaN or infinite at {int(bad.sum())} latents (first rows: {rows}); "
            "check the generator's outputs at those latents"
        )
