"""Batched Jacobians of a generator, one per latent, chunked to fit a memory budget.

For ``G: R^d -> R^D`` and latents ``z_1..z_N``, returns ``J(z_n) = dG/dz (z_n)`` of shape ``(N, D, d)``.
Forward mode (the cheap direction when ``D >= d``, which is every generator) is ``d`` Jacobian-vector products
per latent: ``vmap`` over basis tangents of ``torch.func.jvp`` of the *batched* generator
(:mod:`gendebias.geometry.products`), so a chunk of ``c`` latents with ``t`` tangents is one forward pass of
``c * t`` rows. Reverse mode is ``vmap`` over latents of ``jacrev`` (``D`` vector-Jacobian products).
``mode="auto"`` picks forward when ``D >= d`` and falls back to reverse when an operation has no forward-mode
rule (a custom ``autograd.Function`` without ``jvp``).

How many latents and tangents run at once comes from a memory budget (:mod:`gendebias.geometry.memory`);
a CUDA out-of-memory error halves the plan and retries the chunk. Products run in the requested ``precision``
(:mod:`gendebias.geometry.precision`); the returned Jacobians are in the generator's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import torch
from torch import Tensor
from torch.func import jacrev, vmap

from gendebias.errors import DeviceMemoryError, InvalidArgumentError, NumericalError
from gendebias.geometry._inputs import (
    GeneratorLike,
    check_choice,
    check_chunk_size,
    check_generator,
    check_latents,
    flat_function,
)
from gendebias.geometry.memory import (
    Chunking,
    check_memory_budget,
    forward_bytes,
    map_chunks,
    plan_for,
    release_device_memory,
)
from gendebias.geometry.precision import (
    Precision,
    check_precision,
    effective_precision,
    lowered,
    precision_mode,
)
from gendebias.geometry.products import BatchedFunction, batched_function, jvp_products

Mode = Literal["auto", "forward", "reverse"]
MODES = ("auto", "forward", "reverse")
ReduceBytes = Callable[[int, int], int]
"""Extra bytes per latent of a reduction of its ``(D, d)`` Jacobian, as a function of ``(d, D)``."""
T = TypeVar("T")


@dataclass
class JacobianRun:
    """What a Jacobian computation ran with: ``mode``, effective ``precision``, and the ``chunking`` in use
    (updated if an out-of-memory error halved it)."""

    mode: str
    precision: str
    chunking: Chunking
    latent_shape: tuple[int, ...] = field(repr=False)
    computed: GeneratorLike = field(repr=False)
    """The generator as it computes in ``precision`` (:func:`~gendebias.geometry.precision.lowered`)."""
    output_dim: int = 0


def jacobian(generator: GeneratorLike, latents: Tensor, *, mode: Mode = "auto", chunk_size: int | None = None,
             precision: Precision = "fp32", memory_budget: int | None = None) -> Tensor:
    """Jacobians of ``generator`` at each latent.

    Args:
        generator: a ``Generator`` or callable mapping ``(N, *latent_shape)`` to ``(N, *output_shape)``;
            modules with batch norm or dropout must be in eval mode.
        latents: ``(N, *latent_shape)`` floating tensor, finite, same dtype and device as the generator.
        mode: ``"forward"`` (JVPs), ``"reverse"`` (``jacrev``) or ``"auto"`` (see the module docstring).
        chunk_size: latents per chunk; None plans it from ``memory_budget``.
        precision: ``"fp32"``, ``"tf32"`` or ``"bf16"`` products (float32 generators only for the last two).
        memory_budget: bytes one chunk may use; None: most of a CUDA device's free memory, or a cache-sized
            budget on CPU (:func:`~gendebias.geometry.memory.default_memory_budget`).

    Returns:
        ``(N, D, d)`` tensor in the latents' dtype, ``D = prod(output_shape)``, ``d = prod(latent_shape)``;
        column ``j`` differentiates with respect to ``latents.flatten(1)[:, j]``.
    """
    blocks = list(jacobian_chunks(generator, latents, mode=mode, chunk_size=chunk_size, precision=precision,
                                  memory_budget=memory_budget))
    return torch.cat(blocks) if len(blocks) > 1 else blocks[0]


def jacobian_chunks(generator: GeneratorLike, latents: Tensor, *, mode: Mode = "auto",
                    chunk_size: int | None = None, precision: Precision = "fp32",
                    memory_budget: int | None = None) -> Iterator[Tensor]:
    """Yield the Jacobians of consecutive chunks of ``latents``, each ``(chunk, D, d)``.

    Always yields at least one block (an empty ``(0, D, d)`` one when ``N == 0``).
    """
    blocks, _ = map_jacobians(generator, latents, lambda block: block, mode=mode, chunk_size=chunk_size,
                              precision=precision, memory_budget=memory_budget)
    return blocks


def map_jacobians(generator: GeneratorLike, latents: Tensor, reduce: Callable[[Tensor], T], *,
                  mode: Mode = "auto", chunk_size: int | None = None, precision: Precision = "fp32",
                  memory_budget: int | None = None,
                  reduce_bytes: ReduceBytes | None = None) -> tuple[Iterator[T], JacobianRun]:
    """``reduce`` applied to each chunk's ``(c, D, d)`` Jacobians, lazily, with the run's description.

    ``reduce`` runs inside the out-of-memory retry, so its memory counts too: ``reduce_bytes(d, D)`` is its
    extra memory per latent. The iterator always yields at least once (an empty chunk when ``N == 0``).
    """
    run = plan_jacobians(generator, latents, mode=mode, chunk_size=chunk_size, precision=precision,
                         memory_budget=memory_budget, reduce_bytes=reduce_bytes)
    def work(start: int, chunk: Tensor) -> T:
        block = jacobian_block(run.computed, chunk, run)
        _check_finite(block, start)
        return reduce(block)

    def blocks() -> Iterator[T]:
        if latents.shape[0] == 0:
            latent_dim = math.prod(run.latent_shape)
            yield reduce(latents.new_zeros((0, run.output_dim, latent_dim)))
            return
        yield from map_chunks(latents, run, work)

    return blocks(), run


@dataclass(frozen=True)
class CallShape:
    """The checked call: ``latent_shape``, ``latent_dim`` (d), ``output_dim`` (D), the bytes one latent's forward
    pass creates (:func:`~gendebias.geometry.memory.forward_bytes`) and the probe latent."""

    latent_shape: tuple[int, ...]
    latent_dim: int
    output_dim: int
    forward_bytes: int
    probe: Tensor = field(repr=False)


def inspect_call(generator: GeneratorLike, latents: Tensor, *, chunk_size: int | None, precision: str,
                 memory_budget: int | None) -> CallShape:
    """Check every argument of a Jacobian-type call; measure the output dimension and the memory of one forward
    pass on one latent."""
    check_chunk_size(chunk_size)
    check_memory_budget(memory_budget)
    check_latents(latents)
    check_generator(generator, latents)
    check_precision(precision, latents.dtype)
    latent_shape = tuple(latents.shape[1:])
    probe = latents[:1] if latents.shape[0] else latents.new_zeros((1, *latent_shape))
    outputs: list[Tensor] = []
    allocated = forward_bytes(lambda: outputs.append(_forward(generator, probe)))
    return CallShape(latent_shape, math.prod(latent_shape), outputs[0][0].numel(), allocated, probe)


def plan_jacobians(generator: GeneratorLike, latents: Tensor, *, mode: Mode, chunk_size: int | None,
                   precision: Precision, memory_budget: int | None,
                   reduce_bytes: ReduceBytes | None = None) -> JacobianRun:
    """Check the call, pick the mode and plan the chunks from the measured memory cost: the :class:`JacobianRun`."""
    check_choice("mode", mode, MODES)
    shape = inspect_call(generator, latents, chunk_size=chunk_size, precision=precision,
                         memory_budget=memory_budget)
    chosen = mode if mode != "auto" else ("forward" if shape.output_dim >= shape.latent_dim else "reverse")
    used = effective_precision(precision, latents.device)
    run = JacobianRun(mode=chosen, precision=used, chunking=Chunking(1, 1), latent_shape=shape.latent_shape,
                      output_dim=shape.output_dim, computed=lowered(generator, used))
    if run.mode == "forward":
        _check_forward_mode(batched_function(run.computed, shape.latent_shape), shape.probe, run,
                            fallback=mode == "auto")
    result_bytes = shape.output_dim * shape.latent_dim * latents.element_size()
    if reduce_bytes is not None:
        result_bytes += reduce_bytes(shape.latent_dim, shape.output_dim)
    run.chunking = plan_for(shape.forward_bytes, result_bytes=result_bytes, latents=latents,
                            tangents=shape.latent_dim if run.mode == "forward" else shape.output_dim,
                            chunk_size=chunk_size, memory_budget=memory_budget)
    return run


def _check_forward_mode(function: BatchedFunction, probe: Tensor, run: JacobianRun, *, fallback: bool) -> None:
    """One JVP on the probe latent: an op without a forward-mode rule (a custom ``autograd.Function`` with no
    ``jvp``) switches ``run`` to reverse mode when ``fallback``, else gets a clear error."""
    flat = probe.flatten(1).clone()
    try:
        with precision_mode(run.precision, probe.device), torch.no_grad():
            torch.func.jvp(function, (flat,), (torch.ones_like(flat),))
    except NotImplementedError as error:
        if not fallback:
            raise InvalidArgumentError(
                f"the generator has an operation without a forward-mode derivative ({error}); "
                "use mode='reverse' or mode='auto', or give the operation a jvp"
            ) from error
        run.mode = "reverse"


def jacobian_block(generator: GeneratorLike, chunk: Tensor, run: JacobianRun) -> Tensor:
    """``(c, D, d)`` Jacobians of one chunk with ``run``'s mode, precision and tangents per call."""
    flat = chunk.flatten(1)
    per_latent = flat_function(generator, run.latent_shape)
    with precision_mode(run.precision, chunk.device), torch.no_grad():
        if run.mode == "forward":
            basis = torch.eye(flat.shape[1], dtype=flat.dtype, device=flat.device)
            columns = jvp_products(per_latent, flat, basis[:, None, :].expand(-1, flat.shape[0], -1),
                                   chunk=run.chunking.tangents)
            return columns.permute(1, 2, 0)
        return vmap(jacrev(per_latent, chunk_size=run.chunking.tangents))(flat).to(flat.dtype)


def _forward(generator: GeneratorLike, probe: Tensor) -> Tensor:
    """The generator's output for the one-latent ``probe``, checked to be ``(1, *output_shape)``."""
    try:
        with torch.no_grad():
            output = generator(probe)
    except torch.OutOfMemoryError:
        failed = True
    else:
        failed = False
    if failed:  # outside the handler, so the traceback no longer holds the forward pass's tensors
        release_device_memory(probe.device)
        raise DeviceMemoryError("the generator's forward pass of one latent does not fit in device memory; "
                                "free device memory or use a larger device")
    if not isinstance(output, Tensor) or output.ndim < 1 or output.shape[0] != 1:
        raise NumericalError(
            "generator must return a tensor of shape (N, *output_shape) for latents of shape (N, ...); "
            f"for one latent it returned {getattr(output, 'shape', type(output).__name__)}"
        )
    return output


def _check_finite(block: Tensor, start: int) -> None:
    bad = ~torch.isfinite(block.flatten(1)).all(dim=1)
    if bool(bad.any()):
        rows = (bad.nonzero().flatten()[:10] + start).tolist()
        raise NumericalError(
            f"the generator's Jacobian is NaN or infinite at {int(bad.sum())} latents (first rows: {rows}); "
            "check the generator's outputs at those latents"
        )
