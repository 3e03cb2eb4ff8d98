"""Jacobian-vector and vector-Jacobian products of a generator, batched over latents and over tangents.

``jvp_products`` lifts ``torch.func.jvp`` of one latent's map with ``vmap`` over latents and over ``t`` tangents at
a time (``jacfwd`` has no ``chunk_size``; this is the chunked ``vmap(jvp)`` it would be). For latents
``Z (c, d)`` (flattened), ``batched_function`` is ``Z -> G(Z) (c, D)`` and ``vjp_operator`` pulls cotangents back
through one saved forward graph of it, so power iterations reuse one forward pass (:class:`Backward` says how).
Latents never mix (generators are refused in training mode, where batch norm would mix them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import jvp, vjp, vmap

from gendebias.geometry._inputs import GeneratorLike

BatchedFunction = Callable[[Tensor], Tensor]
PerLatentFunction = Callable[[Tensor], Tensor]


def batched_function(generator: GeneratorLike, latent_shape: tuple[int, ...]) -> BatchedFunction:
    """``Z (c, d) -> G(Z.reshape(c, *latent_shape)).reshape(c, D)``."""

    def function(flat: Tensor) -> Tensor:
        return generator(flat.reshape(flat.shape[0], *latent_shape)).reshape(flat.shape[0], -1)

    return function


def jvp_products(per_latent: PerLatentFunction, latents: Tensor, tangents: Tensor, *, chunk: int) -> Tensor:
    """``J(z_i) v_ti`` for latents ``(c, d)`` and tangents ``(t, c, d)``: returns ``(t, c, D)`` in the latents' dtype.

    ``per_latent`` maps one flat latent ``(d,)`` to its flat output ``(D,)``; it is lifted by ``vmap`` over
    latents outside ``vmap`` over ``chunk`` tangents inside, so each call is one forward pass of ``c * chunk``
    rows. (``jacfwd``'s own nesting; a batched forward with vmapped tangents hits view errors in
    ``group_norm``'s forward-mode rule.) Results are written into one preallocated buffer.
    """
    latents = _owned(latents)

    def product(latent: Tensor, tangent: Tensor) -> Tensor:
        return jvp(per_latent, (latent,), (tangent,))[1]

    over_tangents = vmap(product, in_dims=(None, 0))
    lifted = vmap(over_tangents, in_dims=(0, 1), out_dims=1)
    return _fill(lambda block: lifted(latents, block), tangents, chunk, latents.dtype)


BACKWARDS = ("vmap", "vmap_with_grad", "loop")


@dataclass
class Backward:
    """How cotangents run, shared by the chunks of one call: the first of :data:`BACKWARDS` that works.

    ``vmap``: vmapped under ``no_grad``. ``vmap_with_grad``: the same with grad mode on, which some backward rules
    need under ``vmap`` (diffusers decoders: GroupNorm's backward on a channels-last input asks ``is_contiguous``
    for channels-last, not implemented under ``vmap`` with grad off); it records a double-backward graph that is
    dropped at once. ``loop``: one backward pass of all ``c`` latents per cotangent, which needs no ``vmap``.
    """

    mode: str = "vmap"


def vjp_operator(function: BatchedFunction, latents: Tensor,
                 backward: Backward | None = None) -> Callable[[Tensor, int], Tensor]:
    """The pullback of one forward graph at ``latents (c, d)``, as ``(cotangents (t, c, D), chunk) -> (t, c, d)``.

    The forward pass runs once; every call reuses its saved activations (power iterations call it repeatedly).
    Cotangents run ``chunk`` at a time as ``backward`` says, falling to the next mode when one refuses ``vmap``
    and recording it in ``backward`` so the call's later chunks start there.
    """
    backward = backward if backward is not None else Backward()
    latents = _owned(latents)
    output, pullback = vjp(function, latents)[:2]

    def product(cotangent: Tensor) -> Tensor:
        return pullback(cotangent.to(output.dtype))[0]

    lifted = vmap(product)

    def with_grad(block: Tensor) -> Tensor:
        with torch.enable_grad():
            return lifted(block).detach()

    def sequential(block: Tensor) -> Tensor:
        return torch.stack([product(cotangent) for cotangent in block])

    runs = {"vmap": lifted, "vmap_with_grad": with_grad, "loop": sequential}

    def operator(cotangents: Tensor, chunk: int) -> Tensor:
        while True:
            try:
                return _fill(runs[backward.mode], cotangents, chunk, latents.dtype)
            except RuntimeError as error:
                if backward.mode == "loop" or "vmap" not in str(error):
                    raise
                backward.mode = BACKWARDS[BACKWARDS.index(backward.mode) + 1]

    return operator


def _owned(latents: Tensor) -> Tensor:
    """A copy that owns its storage: forward AD on a view (a chunk of a large batch) makes every tangent as
    large as the view's whole base (measured: 30 ms per product for a 119-row chunk of 19,000 rows)."""
    return latents.clone() if latents._base is not None else latents


def _fill(lifted: Callable[[Tensor], Tensor], inputs: Tensor, chunk: int, dtype: torch.dtype) -> Tensor:
    out: Tensor | None = None
    with torch.no_grad():
        for start in range(0, inputs.shape[0], chunk):
            block = lifted(inputs[start:start + chunk].contiguous())  # expanded tangents break .view()
            if out is None:
                out = block.new_empty((inputs.shape[0], *block.shape[1:]), dtype=dtype)
            out[start:start + block.shape[0]] = block
    assert out is not None, "products need at least one tangent"
    return out
