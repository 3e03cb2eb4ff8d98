"""Tile codes: which affine piece of a piecewise-affine generator each latent lies on.

A continuous piecewise-affine generator splits latent space into convex tiles on which ``J`` is constant
(``docs/design.md#tiles-and-tile-codes``). A tile is identified by the generator's activation pattern at ``z`` (the
piece each piecewise-linear activation is on; see :mod:`gendebias.geometry.activations`), hashed to a 64-bit
**tile code**:

    tile_code(z) = sum_i sum_j pattern_ij(z) * key_ij   (mod 2^64)

with fixed pseudo-random 64-bit keys per activation ``i`` and unit ``j`` (seeded, so codes are stable across calls,
processes and devices). For two different patterns the codes collide only if a random combination of keys sums to
zero mod 2^64: probability ~2^-64 per pair. On a generator with smooth parts, codes describe its piecewise-affine
part only (same code does *not* imply same ``J``); :func:`nonlinearities` says which case applies.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gendebias.geometry._inputs import GeneratorLike, check_chunk_size, check_generator, check_latents, chunks
from gendebias.geometry.activations import Nonlinearities, record

_KEY_SEED = 0x6E6E64656269617
TILE_CHUNK_BYTES = 256 * 2**20
"""Budget for one chunk's activation patterns when ``chunk_size`` is None."""


def tile_codes(generator: GeneratorLike, latents: Tensor, *, chunk_size: int | None = None) -> Tensor:
    """64-bit tile code of each latent: ``(N,)`` int64 (see the module docstring for the hash).

    Args:
        generator: a ``Generator`` or callable ``(N, *latent_shape) -> (N, *output_shape)``.
        latents: ``(N, *latent_shape)`` floating tensor.
        chunk_size: latents per forward pass; None picks one from :data:`TILE_CHUNK_BYTES`.
    """
    check_chunk_size(chunk_size)
    check_latents(latents)
    check_generator(generator, latents)
    if latents.shape[0] == 0:
        return torch.zeros(0, dtype=torch.int64, device=latents.device)
    if chunk_size is None:
        patterns, _ = record(generator, latents[:1])
        width = sum(p.shape[1] for p in patterns)
        chunk_size = max(1, TILE_CHUNK_BYTES // max(1, 16 * width))
    keys: dict[tuple[int, int], Tensor] = {}
    return torch.cat([_hash(record(generator, chunk)[0], keys, chunk) for chunk in chunks(latents, chunk_size)])


def nonlinearities(generator: GeneratorLike, latents: Tensor) -> Nonlinearities:
    """Run one probe pass on ``latents`` (one latent is enough) and report the generator's nonlinear operations."""
    check_latents(latents)
    check_generator(generator, latents)
    return record(generator, latents[:1])[1]


def is_piecewise_affine(generator: GeneratorLike, latents: Tensor) -> bool:
    """True when every latent-dependent operation is affine or piecewise linear (so ``J`` is constant per tile)."""
    return nonlinearities(generator, latents).piecewise_affine


def _hash(patterns: list[Tensor], keys: dict[tuple[int, int], Tensor], chunk: Tensor) -> Tensor:
    """``sum_ij pattern_ij * key_ij`` mod 2^64 (int64 arithmetic wraps), one code per latent of ``chunk``.

    An affine generator (no patterns) is one tile: every code is 0.
    """
    code = torch.zeros(chunk.shape[0], dtype=torch.int64, device=chunk.device)
    for index, pattern in enumerate(patterns):
        key = keys.get((index, pattern.shape[1]))
        if key is None:
            key = _keys(index, pattern.shape[1]).to(pattern.device)
            keys[(index, pattern.shape[1])] = key
        code = code + (pattern.long() * key).sum(dim=1)
    return code


def _keys(index: int, width: int) -> Tensor:
    generator = torch.Generator().manual_seed(_KEY_SEED + 1_000_003 * index + width)
    return torch.randint(-(2**63), 2**63 - 1, (width,), dtype=torch.int64, generator=generator)
