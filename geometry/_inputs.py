"""The one place where geometry checks its inputs and turns a generator into a per-latent function.

Every public function of :mod:`gendebias.geometry` calls :func:`check_latents` and
:func:`check_generator` first, so a bad call fails early with a message that says how to fix it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd
from torch.nn.modules.instancenorm import _InstanceNorm

from gendebias.errors import GeneratorModeError, InvalidArgumentError

GeneratorLike = Callable[[Tensor], Tensor]
"""A ``Generator`` or any callable mapping latents ``(N, *latent_shape)`` to outputs ``(N, *output_shape)``."""

_MODE_DEPENDENT = (_BatchNorm, _InstanceNorm, _DropoutNd, nn.AlphaDropout, nn.FeatureAlphaDropout)


def check_latents(latents: Tensor, *, name: str = "latents") -> Tensor:
    """Return ``latents`` unchanged after checking it is a finite floating tensor of shape ``(N, ...)``."""
    if not isinstance(latents, Tensor):
        raise InvalidArgumentError(
            f"{name} must be a torch.Tensor of shape (N, *latent_shape), got {type(latents).__name__}; "
            "wrap arrays with torch.as_tensor(...)"
        )
    if latents.ndim < 2:
        raise InvalidArgumentError(
            f"{name} must have shape (N, *latent_shape) with a batch dimension first, got shape "
            f"{tuple(latents.shape)}; use latents.unsqueeze(0) for a single latent"
        )
    if not latents.is_floating_point():
        raise InvalidArgumentError(f"{name} must be a floating tensor, got dtype {latents.dtype}")
    bad = ~torch.isfinite(latents.flatten(1)).all(dim=1)
    if bool(bad.any()):
        rows = bad.nonzero().flatten()[:10].tolist()
        raise InvalidArgumentError(
            f"{name} contain NaN or infinite values in {int(bad.sum())} rows (first: {rows}); "
            "drop or replace those rows"
        )
    return latents


def check_generator(generator: GeneratorLike, latents: Tensor) -> None:
    """Refuse generators the maths cannot use: not callable, mode-dependent layers in training mode,
    or parameters whose dtype or device differ from the latents'.

    gendebias never calls ``.eval()`` on the caller's module: it says so instead (``docs/design.md#conventions``).
    """
    if not callable(generator):
        raise InvalidArgumentError(f"generator must be callable, got {type(generator).__name__}")
    module = generator if isinstance(generator, nn.Module) else getattr(generator, "module", None)
    if not isinstance(module, nn.Module):
        return
    training = [name or type(module).__name__ for name, m in module.named_modules()
                if m.training and isinstance(m, _MODE_DEPENDENT)]
    if training:
        raise GeneratorModeError(
            f"generator has layers in training mode ({', '.join(training[:5])}); their output depends on the "
            "batch or on randomness, so the Jacobian is not the generator's. Call generator.eval() first"
        )
    param = next((p for p in module.parameters() if p.is_floating_point()), None)
    if param is None:
        return
    if param.dtype != latents.dtype:
        raise InvalidArgumentError(
            f"latents have dtype {latents.dtype} but the generator's parameters are {param.dtype}; "
            f"pass latents.to({param.dtype})"
        )
    if param.device != latents.device:
        raise InvalidArgumentError(
            f"latents are on {latents.device} but the generator is on {param.device}; "
            f"pass latents.to('{param.device}')"
        )


def check_chunk_size(chunk_size: int | None) -> None:
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise InvalidArgumentError(f"chunk_size must be a positive int or None, got {chunk_size!r}")


def check_choice(name: str, value: str, choices: object) -> None:
    """Raise a teaching ``InvalidArgumentError`` when ``value`` is not one of ``choices`` (a dict or list)."""
    options = list(choices)  # type: ignore[call-overload]
    if value not in options:
        raise InvalidArgumentError(f"unknown {name} {value!r}; choose one of {options}", field=name)


SEED_LIMIT = 2**64
"""Seeds are ints in ``[0, 2**64)``: every 64-bit unsigned value, as on the wire."""


def check_seed(seed: object) -> int:
    """``seed`` itself if it is an int in ``[0, 2**64)``, else a teaching ``InvalidArgumentError``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise InvalidArgumentError(f"seed must be an int in [0, 2**64) or None, got {seed!r}", field="seed")
    return seed


def check_count(name: str, value: object, *, minimum: int = 0) -> int:
    """``value`` itself if it is an int ``>= minimum``, else a teaching ``InvalidArgumentError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an int >= {minimum}, got {value!r}", field=name)
    return value


def flat_function(generator: GeneratorLike, latent_shape: tuple[int, ...]) -> Callable[[Tensor], Tensor]:
    """Per-latent map ``R^d -> R^D``: ``v (d,) -> generator(v.reshape(1, *latent_shape)).reshape(D)``.

    Latents of any shape are flattened row-major (``latents.flatten(1)``), so Jacobian column ``j`` is the
    derivative with respect to ``latents.flatten(1)[:, j]``.
    """

    def per_latent(v: Tensor) -> Tensor:
        return generator(v.reshape(1, *latent_shape)).reshape(-1)

    return per_latent


def chunks(latents: Tensor, chunk_size: int) -> Iterator[Tensor]:
    """Consecutive slices of at most ``chunk_size`` latents (views, no copies)."""
    yield from latents.split(chunk_size)
