"""Which operations a generator runs on its latents, and the activation pattern of each piecewise-linear one.

A generator built from affine maps (linear, conv, eval-mode batch norm, pooling by averaging, reshapes) and
piecewise-linear activations (ReLU, LeakyReLU, PReLU, ReLU6/Hardtanh, clamp, abs, max/min, max-pool) is continuous
piecewise affine: its activation pattern (which linear piece each activation is on) fixes its Jacobian
(``docs/design.md#tiles-and-tile-codes``; MaGNET §2, and Balestriero & Baraniuk, "A Spline Theory of Deep
Learning", ICML 2018).

Patterns are recorded with a ``TorchFunctionMode`` rather than module forward hooks: it sees every call, so a
functional ``F.relu`` or ``torch.abs`` inside a custom ``forward`` is recorded too, where a hook-based collector
would miss it and hand two different tiles the same code. Only calls whose output depends on the latents are
classified (dependence = ``requires_grad`` under a probe pass with detached parameters). Any such call that is not
in the affine or piecewise-linear tables is reported as smooth: the generator is then *not* piecewise affine.
That default is conservative: an unknown operation can only make the answer "not piecewise affine".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from gendebias.geometry._inputs import GeneratorLike

AFFINE = frozenset("""
    linear conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d
    avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d
    interpolate upsample upsample_nearest upsample_bilinear pad pixel_shuffle pixel_unshuffle
    add __add__ __radd__ __iadd__ sub __sub__ __rsub__ __isub__ rsub neg negative __neg__ __pos__ positive
    sum mean cumsum flatten unflatten view view_as reshape reshape_as permute transpose t movedim moveaxis
    swapaxes swapdims contiguous clone squeeze unsqueeze expand expand_as repeat repeat_interleave tile
    cat concat concatenate stack hstack vstack chunk split unbind narrow select index_select gather
    __getitem__ __setitem__ roll flip to float double half bfloat16 type type_as __get__ identity
""".split())
"""Operations that are affine in their latent-dependent tensor arguments."""

PRODUCTS = frozenset("""
    mul __mul__ __rmul__ __imul__ multiply matmul __matmul__ __rmatmul__ mm bmm mv dot einsum tensordot
    outer addmm addmv baddbmm
""".split())
"""Multilinear operations: affine when at most one operand depends on the latents."""

DIVISIONS = frozenset("div __truediv__ __itruediv__ true_divide divide".split())
"""Affine when only the numerator depends on the latents."""

MODE_SWITCHED = {"batch_norm": (5, False), "dropout": (2, True), "dropout1d": (2, True),
                 "dropout2d": (2, True), "dropout3d": (2, True), "alpha_dropout": (2, True),
                 "feature_alpha_dropout": (2, True)}
"""Affine only with ``training=False``: the position of that argument and its default."""


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], position: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[position] if len(args) > position else default


def _sign_pattern(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor:
    return args[0] > 0


def _clamp_pattern(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor:
    is_hardtanh = func.__name__ == "hardtanh"
    low = _argument(args, kwargs, 1, "min_val" if is_hardtanh else "min", -1.0 if is_hardtanh else None)
    high = _argument(args, kwargs, 2, "max_val" if is_hardtanh else "max", 1.0 if is_hardtanh else None)
    x = args[0]
    pattern = torch.zeros_like(x, dtype=torch.int64)
    for bound in (low, high):
        if bound is not None:
            pattern = pattern + (x > bound).long()
    return pattern


def _compare_pattern(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor:
    first, second = args[0], _argument(args, kwargs, 1, "other", None)
    return torch.broadcast_tensors(first > second, first)[0]


_MAX_POOLS_WITH_INDICES = {
    "max_pool1d": F.max_pool1d_with_indices, "max_pool2d": F.max_pool2d_with_indices,
    "max_pool3d": F.max_pool3d_with_indices, "adaptive_max_pool1d": F.adaptive_max_pool1d_with_indices,
    "adaptive_max_pool2d": F.adaptive_max_pool2d_with_indices,
    "adaptive_max_pool3d": F.adaptive_max_pool3d_with_indices,
}


def _argmax_pattern(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor:
    kwargs = {key: value for key, value in kwargs.items() if key != "return_indices"}
    with_indices = _MAX_POOLS_WITH_INDICES[func.__name__]
    return with_indices(*args[:6] if func.__name__.startswith("max") else args[:2], **kwargs)[1]  # type: ignore[operator]


PIECEWISE_LINEAR: dict[str, Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Tensor]] = {
    "relu": _sign_pattern, "leaky_relu": _sign_pattern, "prelu": _sign_pattern, "rrelu": _sign_pattern,
    "abs": _sign_pattern, "absolute": _sign_pattern, "__abs__": _sign_pattern,
    "hardtanh": _clamp_pattern, "relu6": _clamp_pattern, "clamp": _clamp_pattern, "clip": _clamp_pattern,
    "maximum": _compare_pattern, "minimum": _compare_pattern, "fmax": _compare_pattern, "fmin": _compare_pattern,
    **dict.fromkeys(_MAX_POOLS_WITH_INDICES, _argmax_pattern),
}
"""Piecewise-linear operations and how to read their activation pattern from their inputs (before the call,
so in-place variants are read correctly). ``relu6`` is ``hardtanh(x, 0, 6)`` and is recorded as ``hardtanh``."""


@dataclass(frozen=True)
class Nonlinearities:
    """What a probe pass found. ``piecewise_linear``: names of piecewise-linear calls in call order;
    ``smooth``: sorted names of every other non-affine call on the latents (empty iff piecewise affine)."""

    piecewise_linear: tuple[str, ...]
    smooth: tuple[str, ...]

    @property
    def piecewise_affine(self) -> bool:
        return not self.smooth


@dataclass
class _Recorder(TorchFunctionMode):
    batch_size: int
    patterns: list[Tensor] = field(default_factory=list)
    piecewise: list[str] = field(default_factory=list)
    smooth: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        super().__init__()

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        name = op_name(func)
        dependent = [leaf for leaf in tree_leaves((args, kwargs)) if isinstance(leaf, Tensor) and leaf.requires_grad]
        pattern = PIECEWISE_LINEAR[name](func, args, kwargs) if dependent and name in PIECEWISE_LINEAR else None
        output = func(*args, **kwargs)
        if dependent and any(isinstance(leaf, Tensor) and leaf.requires_grad for leaf in tree_leaves(output)):
            self._classify(name, pattern, args, kwargs, dependent)
        return output

    def _classify(self, name: str, pattern: Tensor | None, args: tuple[Any, ...], kwargs: dict[str, Any],
                  dependent: list[Tensor]) -> None:
        if pattern is not None:
            if pattern.ndim == 0 or pattern.shape[0] != self.batch_size:
                self.smooth.add(f"{name} (mixes the batch)")
                return
            self.patterns.append(pattern.reshape(self.batch_size, -1))
            self.piecewise.append(name)
        elif name in MODE_SWITCHED:
            position, default = MODE_SWITCHED[name]
            training = _argument(args, kwargs, position, "training", default)
            if training:
                self.smooth.add(f"{name}(training=True)")
        elif name in PRODUCTS:
            if len(dependent) > 1:
                self.smooth.add(f"{name} of two latent-dependent tensors")
        elif name in DIVISIONS:
            denominator = _argument(args, kwargs, 1, "other", None)
            if isinstance(denominator, Tensor) and denominator.requires_grad:
                self.smooth.add(f"{name} by a latent-dependent tensor")
        elif name not in AFFINE:
            self.smooth.add(name)


def op_name(func: Any) -> str:
    """``F.relu`` -> ``relu``; in-place ``relu_`` -> ``relu``; dunder names are kept (``__rdiv__``)."""
    name = getattr(func, "__name__", repr(func))
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    return "hardtanh" if name == "relu6" else name


@contextmanager
def _recording(batch_size: int) -> Iterator[_Recorder]:
    recorder = _Recorder(batch_size)
    with torch.enable_grad(), recorder:
        yield recorder


def record(generator: GeneratorLike, latents: Tensor) -> tuple[list[Tensor], Nonlinearities]:
    """Run ``generator`` once on ``latents`` (``(N, ...)``) and return the activation patterns
    (one ``(N, m_i)`` tensor per piecewise-linear call, in call order) and the :class:`Nonlinearities` found.

    Parameters of an ``nn.Module`` are detached for the pass (the caller's module is not modified), so only
    latent-dependent calls are classified. Other callables run as they are; their parameters then look
    latent-dependent, which can only make the report more conservative. TorchScript runs outside Python's
    dispatch, so a module containing one is reported as not piecewise affine.
    """
    probe = latents.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        inputs = probe + 0  # a non-leaf, so an in-place first layer is allowed
    scripted = isinstance(generator, nn.Module) and any(
        isinstance(module, torch.jit.ScriptModule) for module in generator.modules())
    with _recording(latents.shape[0]) as recorder:
        if scripted:
            recorder.smooth.add("TorchScript (its operations cannot be inspected)")
            generator(inputs)
        elif isinstance(generator, nn.Module):
            detached = {name: p.detach() for name, p in generator.named_parameters()}
            functional_call(generator, detached, (inputs,))
        else:
            generator(inputs)
    report = Nonlinearities(tuple(recorder.piecewise), tuple(sorted(recorder.smooth)))
    return [p.detach() for p in recorder.patterns], report


def activation_patterns(generator: GeneratorLike, latents: Tensor) -> list[Tensor]:
    """The activation patterns of :func:`record` alone: one ``(N, m_i)`` tensor per piecewise-linear call."""
    return record(generator, latents)[0]
