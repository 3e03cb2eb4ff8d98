"""Decode and validate request fields into torch tensors, before any work is queued.

Every check names the field at fault (``ErrorInfo.metadata["field"]``). Latents must match the generator's latent
shape, be float32 or float64 (cast to the generator's dtype) and be finite; counts are checked against the
server's limits with exact integer arithmetic before anything is allocated.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from gendebias.errors import (
    InvalidArgumentError,
    InvalidLatentsError,
    InvalidTensorError,
    LimitExceededError,
    shown,
)
from gendebias.generators import Generator
from gendebias.geometry.sampling import RHO_LIMIT
from gendebias.service.batching import Options
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import tensor_pb2
from gendebias.wire import from_tensor, to_tensor

TARGETS = {pb.TARGET_UNSPECIFIED: "tilted", pb.TARGET_TILTED: "tilted", pb.TARGET_UNIFORM: "uniform",
           pb.TARGET_BALANCED: "balanced"}
SCHEMES = {pb.SCHEME_UNSPECIFIED: "multinomial", pb.SCHEME_MULTINOMIAL: "multinomial",
           pb.SCHEME_SYSTEMATIC: "systematic", pb.SCHEME_WITHOUT_REPLACEMENT: "without_replacement",
           pb.SCHEME_REJECTION: "rejection"}
SAMPLERS = {pb.SAMPLER_UNSPECIFIED: "auto", pb.SAMPLER_AUTO: "auto", pb.SAMPLER_SIR: "sir", pb.SAMPLER_SMC: "smc",
            pb.SAMPLER_MCMC: "mcmc"}
SAMPLER_CODES = {"auto": pb.SAMPLER_AUTO, "sir": pb.SAMPLER_SIR, "smc": pb.SAMPLER_SMC, "mcmc": pb.SAMPLER_MCMC}
SCHEME_CODES = {name: code for code, name in SCHEMES.items() if code != pb.SCHEME_UNSPECIFIED}
METHODS = {pb.METHOD_UNSPECIFIED: "exact", pb.METHOD_EXACT: "exact", pb.METHOD_RANDOMIZED: "randomized",
           pb.METHOD_PROJECTION: "projection"}
METHOD_CODES = {name: code for code, name in METHODS.items() if code != pb.METHOD_UNSPECIFIED}
PRECISIONS = {pb.PRECISION_UNSPECIFIED: "fp32", pb.PRECISION_FP32: "fp32", pb.PRECISION_TF32: "tf32",
              pb.PRECISION_BF16: "bf16"}
PRECISION_CODES = {name: code for code, name in PRECISIONS.items() if code != pb.PRECISION_UNSPECIFIED}
MAX_POWER_ITERATIONS = 20


def latents_from(message: tensor_pb2.Tensor, generator: Generator, *, max_elements: int) -> Tensor:
    """``(N, *latent_shape)`` latents in the generator's dtype and on its device."""
    array = from_tensor(message, field="latents", max_elements=max_elements)
    if array.dtype.kind != "f":
        raise InvalidTensorError("latents must be FLOAT32 or FLOAT64", field="latents")
    if array.ndim < 2 or tuple(array.shape[1:]) != generator.latent_shape:
        raise InvalidLatentsError(
            f"{generator.name} takes latents of shape (N, {', '.join(map(str, generator.latent_shape))}), "
            f"got {list(array.shape)}", field="latents")
    finite = np.isfinite(array.reshape(array.shape[0], generator.latent_dim)).all(axis=1)
    if not finite.all():
        rows = np.flatnonzero(~finite)[:10].tolist()
        raise InvalidLatentsError(f"latents contain NaN or infinite values in {int((~finite).sum())} rows "
                                  f"(first: {rows})", field="latents")
    return torch.from_numpy(array.copy()).to(device=generator.device, dtype=generator.dtype)


def log_density_from(message: tensor_pb2.Tensor, count: int, *, field: str) -> Tensor:
    """``(count,)`` float64 log densities aligned with a chunk of latents."""
    array = from_tensor(message, field=field, max_elements=count)
    if array.shape != (count,) or array.dtype.kind != "f":
        raise InvalidTensorError(f"{field} must be a float tensor of shape ({count},) aligned with the latents, "
                                 f"got {array.dtype} {list(array.shape)}", field=field)
    return torch.from_numpy(array.astype(np.float64))


def top_k_from(value: int, generator: Generator) -> int | None:
    if not 0 <= value <= generator.latent_dim:
        raise InvalidArgumentError(f"top_k must be in [0, {generator.latent_dim}] (0 = all), got {value}",
                                   field="top_k")
    return value or None


def volume_options(request: pb.ComputeLogVolumesRequest, generator: Generator) -> Options:
    """The computation a ``ComputeLogVolumes`` stream asks for, checked before anything runs."""
    method = choice_from(request.method, METHODS, field="method")
    precision = choice_from(request.precision, PRECISIONS, field="precision")
    top_k = top_k_from(request.top_k, generator)
    if method == "randomized" and top_k is None:
        raise InvalidArgumentError("method randomized estimates the top_k largest singular values; set top_k",
                                   field="top_k")
    if request.return_singular_values and method != "exact":
        raise InvalidArgumentError(f"return_singular_values needs method exact, got {method}", field="method")
    if precision != "fp32" and generator.dtype != torch.float32:
        raise InvalidArgumentError(f"precision {precision} lowers float32 arithmetic, but generator "
                                   f"{shown(request.generator_id)} computes in {generator.dtype}", field="precision")
    iterations = request.power_iterations if request.HasField("power_iterations") else None
    if iterations is not None and not 0 <= iterations <= MAX_POWER_ITERATIONS:
        raise InvalidArgumentError(f"power_iterations must be in [0, {MAX_POWER_ITERATIONS}], got {iterations}",
                                   field="power_iterations")
    rows = request.projection_dim if request.HasField("projection_dim") else None
    output_dim = math.prod(generator.output_shape)
    if rows is not None and not 1 <= rows <= output_dim:
        raise InvalidArgumentError(f"projection_dim must be in [1, {output_dim}], got {rows}",
                                   field="projection_dim")
    return Options(top_k, request.return_singular_values, request.return_tile_codes, method, precision, iterations,
                   rows, request.seed if request.HasField("seed") else None)


def rho_from(has_rho: bool, value: float) -> float:
    if not has_rho:
        return 1.0
    if not abs(value) <= RHO_LIMIT:
        raise InvalidArgumentError(f"rho must be a finite number with |rho| <= {RHO_LIMIT:g}, got {value}",
                                   field="rho")
    return value


def choice_from(value: int, choices: dict[int, str], *, field: str) -> str:
    if value not in choices:
        known = sorted(set(choices.values()))
        raise InvalidArgumentError(f"unknown {field} {value}; choose one of {known}", field=field)
    return choices[value]


def count_within(value: int, limit: int, *, field: str, minimum: int = 1) -> int:
    if value < minimum:
        raise InvalidArgumentError(f"{field} must be >= {minimum}, got {value}", field=field)
    if value > limit:
        raise LimitExceededError(f"{field}={value} exceeds this server's limit of {limit}", field=field)
    return value


def wire(values: Tensor) -> tensor_pb2.Tensor:
    return to_tensor(values.detach().cpu().numpy())


def row_slices(count: int, row_bytes: int, message_bytes: int) -> Iterator[slice]:
    """Consecutive row ranges whose data fits ``message_bytes`` (at least one row per message)."""
    step = max(1, message_bytes // max(1, row_bytes))
    for start in range(0, count, step):
        yield slice(start, min(count, start + step))
