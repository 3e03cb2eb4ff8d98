"""How many latents and tangents run at once: chunk plans from a memory budget, and halving on device OOM.

A Jacobian-type computation over ``N`` latents needs ``T`` products per latent (``T = d`` JVPs for the exact
log-volume). Run ``c`` latents with ``t`` tangents at a time and its memory is about ``c * (a + t * b)`` bytes:
``a`` per latent (the primal activations and the latent's share of the result), ``b`` per latent-tangent pair (the
tangent activations). Both come from one plain forward pass of one latent run under a dispatch mode that adds up
the bytes of every tensor an operator creates (:func:`forward_bytes`; a dispatch mode inside ``jvp`` crashed a
diffusers decoder, so the products themselves are not probed), times :data:`LATENT_FACTOR` and
:data:`PAIR_FACTOR`. The sum bounds the live memory from above (nothing is assumed freed), so plans are
conservative; a CUDA out-of-memory error (a cuDNN workspace, fragmentation) still halves the plan and retries the
same chunk
(:func:`map_chunks`), and only a plan of one latent and one tangent that does not fit raises
:class:`~gendebias.errors.DeviceMemoryError`.

All tangents of a latent in one pass are preferred (each extra tangent chunk repeats the primal forward pass), then
as many latents as fit. On CPU the default budget is modest on purpose: much larger batches fall out of cache and
run slower (256 MiB was fastest in the ``benchmarks/jacobian.py`` sweep, 1 GiB slower), while the GPU default is
most of the free device memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from gendebias.errors import DeviceMemoryError, InvalidArgumentError

T = TypeVar("T")

CPU_MEMORY_BUDGET = 256 * 2**20
"""Default budget on CPU (bytes): the fastest of the benchmark sweep (see the module docstring)."""
CUDA_FREE_SHARE = 0.8
"""Default budget on CUDA: this share of the device memory free when the computation starts."""
PAIR_FACTOR = 3
"""Bytes of one latent-tangent pair over one latent's forward bytes: the tangent activations and the product
rules' temporaries (counted under ``jvp`` on a transposed-conv + batch-norm generator: 2.9)."""
LATENT_FACTOR = 2
"""Bytes of one latent (primal activations, or a VJP's saved graph) over its forward bytes."""


@dataclass(frozen=True)
class Chunking:
    """``latents`` per chunk and ``tangents`` (products) per vmapped call."""

    latents: int
    tangents: int

    def halved(self) -> Chunking:
        """The next smaller plan after an out-of-memory error: halve the larger of the two (latents on a tie)."""
        if self.latents == 1 and self.tangents == 1:
            raise DeviceMemoryError(
                "one latent with one tangent does not fit in device memory: the generator's own forward pass "
                "with a tangent is too large for this device; free device memory or use a larger device"
            )
        if self.latents >= self.tangents:
            return dataclasses.replace(self, latents=max(1, self.latents // 2))
        return dataclasses.replace(self, tangents=max(1, self.tangents // 2))


@dataclass(frozen=True)
class Cost:
    """Bytes per latent (``per_latent``) and per latent-tangent pair (``per_pair``)."""

    per_latent: int
    per_pair: int


def check_memory_budget(memory_budget: int | None) -> None:
    if memory_budget is not None and (isinstance(memory_budget, bool) or not isinstance(memory_budget, int)
                                      or memory_budget < 1):
        raise InvalidArgumentError(f"memory_budget must be a positive int (bytes) or None, got {memory_budget!r}")


def default_memory_budget(device: torch.device) -> int:
    """:data:`CUDA_FREE_SHARE` of the free memory of a CUDA device, else :data:`CPU_MEMORY_BUDGET`."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * CUDA_FREE_SHARE)
    return CPU_MEMORY_BUDGET


def forward_bytes(forward: Callable[[], object]) -> int:
    """Bytes of every non-view tensor the operators of ``forward()`` create (nothing assumed freed)."""
    counter = _AllocationCounter()
    with counter:
        forward()
    return counter.total


def cost_model(forward: int, *, result_bytes: int) -> Cost:
    """Memory per latent and per latent-tangent pair of a product computation, from one latent's ``forward``
    bytes (:func:`forward_bytes`): :data:`PAIR_FACTOR` forwards per pair, :data:`LATENT_FACTOR` per latent
    (the primal activations, or the graph a VJP saves) plus ``result_bytes`` that its result keeps."""
    return Cost(per_latent=LATENT_FACTOR * forward + result_bytes, per_pair=max(1, PAIR_FACTOR * forward))


def plan_chunking(cost: Cost, *, latents: int, tangents: int, budget: int,
                  chunk_size: int | None = None) -> Chunking:
    """The plan for ``latents`` latents of ``tangents`` products each under ``budget`` bytes.

    With ``chunk_size`` the latents per chunk are fixed and only the tangents adapt.
    """
    latents, tangents = max(1, latents), max(1, tangents)
    if chunk_size is not None:
        fit = (budget // chunk_size - cost.per_latent) // cost.per_pair
        return Chunking(latents=min(chunk_size, latents), tangents=int(min(tangents, max(1, fit))))
    full = cost.per_latent + tangents * cost.per_pair
    if full <= budget:
        return Chunking(latents=int(min(latents, budget // full)), tangents=tangents)
    fit = (budget - cost.per_latent) // cost.per_pair
    return Chunking(latents=1, tangents=int(min(tangents, max(1, fit))))


def plan_for(forward: int, *, result_bytes: int, latents: Tensor, tangents: int, chunk_size: int | None,
             memory_budget: int | None) -> Chunking:
    """Plan ``latents`` of ``tangents`` products each under the budget (None: the device's default), from one
    latent's ``forward`` bytes."""
    budget = memory_budget if memory_budget is not None else default_memory_budget(latents.device)
    cost = cost_model(forward, result_bytes=result_bytes)
    return plan_chunking(cost, latents=latents.shape[0], tangents=tangents, budget=budget, chunk_size=chunk_size)


class Planned(Protocol):
    """Anything that carries the chunking a call is using (a :class:`Plan`, a Jacobian run)."""

    chunking: Chunking


@dataclass
class Plan:
    """The chunking one call is using; :func:`map_chunks` halves it in place after an out-of-memory error."""

    chunking: Chunking


def map_chunks(latents: Tensor, plan: Planned, work: Callable[[int, Tensor], T]) -> Iterator[T]:
    """``work(start, chunk)`` over consecutive chunks of ``latents`` of ``plan.chunking.latents`` rows.

    On a device OOM ``plan.chunking`` is halved in place (``work`` reads its tangents from there) and the chunk is
    retried whole, so no latent is lost or repeated; the device's cached blocks are released before each retry.
    ``start`` is the chunk's first row in ``latents``; afterwards ``plan.chunking`` is the plan that ran.
    """
    start = 0
    while start < latents.shape[0]:
        chunk = latents[start:start + plan.chunking.latents]
        result = _attempt(work, start, chunk)
        if result is _OUT_OF_MEMORY:
            release_device_memory(latents.device)
            plan.chunking = plan.chunking.halved()
            continue
        start += chunk.shape[0]
        yield result


def release_device_memory(device: torch.device) -> None:
    """Return cached blocks to the device (after an error, nothing of ours stays allocated)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


_OUT_OF_MEMORY = object()


def _attempt(work: Callable[[int, Tensor], T], start: int, chunk: Tensor) -> Any:
    try:
        return work(start, chunk)
    except torch.OutOfMemoryError:
        return _OUT_OF_MEMORY  # leaving the handler drops the traceback and with it the chunk's tensors


class _AllocationCounter(TorchDispatchMode):
    """Adds up the bytes of every non-view tensor that an operator returns."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if all(ret.alias_info is None for ret in func._schema.returns):
            self.total += sum(t.numel() * t.element_size() for t in tree_leaves(out) if isinstance(t, Tensor))
        return out
