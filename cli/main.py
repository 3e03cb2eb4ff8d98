"""The ``gendebias`` command: serve generators, or debias latents through a server or in this process.

    gendebias serve                                   # the built-in zoo on port 50051
    gendebias generators --local
    gendebias volumes ramp --latents z.npy --out log_volumes.npy --target localhost:50051
    gendebias reweight digits-gan --latents z.npy --rho 1 --target-density tilted --local
    gendebias resample digits-gan --n 64 --seed 0 --out z.npy --grid samples.png
    gendebias evaluate digits-gan --n 200 --out results/     # naive vs truncation vs MaGNET vs Polarity vs balanced

Commands are thin: they read files, call a backend (:class:`gendebias.clients.Client` for ``--target``, the
library in this process for ``--local``), write files and print a summary (``--format text`` or ``json``).
A domain error (any ``GendebiasError``, or a file that cannot be read or written) prints one line
``error: <message>`` to stderr and exits with status 1.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

import gendebias
from gendebias.cli import files
from gendebias.cli.batch import batch
from gendebias.cli.common import print_json, reports_errors
from gendebias.cli.evaluate import evaluate_command
from gendebias.cli.progress import SamplerProgress
from gendebias.clients import SAMPLERS, SCHEMES, TARGETS, Client, GeneratorInfo
from gendebias.errors import GendebiasError, InvalidArgumentError

DEFAULT_TARGET = "localhost:50051"
GRID_LIMIT = 256

app = typer.Typer(name="gendebias", no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False,
                  help="Correct the sampling bias of pretrained generators by the volume change of their Jacobian.")
app.add_typer(batch)
app.command(name="evaluate")(evaluate_command)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


Target = Annotated[str | None, typer.Option(
    "--target", metavar="ADDR",
    help=f"Server address host:port (default: $GENDEBIAS_TARGET, else {DEFAULT_TARGET}).")]
Local = Annotated[bool, typer.Option("--local", help="Run in this process with the library instead of a server.")]
Token = Annotated[str | None, typer.Option(envvar="GENDEBIAS_TOKEN", show_envvar=True,
                                           help="Bearer token for a server that requires one.")]
Format = Annotated[OutputFormat, typer.Option("--format", help="Print a few readable lines, or one JSON object.")]
Latents = Annotated[Path, typer.Option("--latents", metavar="IN",
                                       help="Latents (N, *latent_shape): .npy, or .safetensors with key 'latents'.")]
Out = Annotated[Path | None, typer.Option("--out", metavar="OUT",
                                          help="Write the result to this .npy or .safetensors file.")]
Rho = Annotated[float, typer.Option(help="Exponent of the volume: 1 = MaGNET, 0 = naive, < 0 favours modes.")]
TopK = Annotated[int | None, typer.Option("--top-k", help="Keep only the K largest singular values (Polarity).")]

def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"gendebias {gendebias.__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                               help="Print the version and exit.")] = False) -> None:
    """Correct the sampling bias of pretrained generators by the volume change of their Jacobian."""


@app.command()
@reports_errors
def serve(
    config: Annotated[Path | None, typer.Option("--config", metavar="FILE",
                                                help="TOML file with a [server] table of settings.")] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default [::]).")] = None,
    port: Annotated[int | None, typer.Option(help="gRPC port (default 50051; 0 picks a free one).")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus /metrics on this port.")] = None,
    token: Annotated[str | None, typer.Option(
        help="Require this bearer token on every call (shown by ps: prefer --token-file or GENDEBIAS_TOKEN).")] = None,
    token_file: Annotated[Path | None, typer.Option(
        "--token-file", metavar="FILE", help="Require the bearer token this file holds (read once, stripped).")] = None,
    registry: Annotated[Path | None, typer.Option(
        metavar="FILE", help="Registry TOML of generators (default: the built-in zoo).")] = None,
) -> None:
    """Serve generators over gRPC until SIGTERM or Ctrl-C (flags > GENDEBIAS_* env vars > --config file)."""
    try:
        from gendebias.service.config import resolve_config
        from gendebias.service.server import serve as run_server
    except ModuleNotFoundError as error:
        raise GendebiasError(f"serve needs the server extras ({error.name} is missing): "
                             "pip install 'gendebias[server]'") from None
    flags = {"host": host, "port": port, "metrics_port": metrics_port, "token": token,
             "token_file": None if token_file is None else str(token_file),
             "registry": None if registry is None else str(registry)}
    run_server(resolve_config(flags=flags, file=config))


@app.command()
@reports_errors
def generators(target: Target = None, local: Local = False, token: Token = None,
               format: Format = OutputFormat.text) -> None:
    """List the served (or built-in) generators."""
    with _backend(target, local, token) as backend:
        infos: list[GeneratorInfo] = backend.list_generators()
    if format is OutputFormat.json:
        return print_json({"generators": [asdict(info) for info in infos]})
    for info in infos:
        typer.echo(f"{info.generator_id:<12} {info.kind:<4} latents {info.latent_shape} -> outputs {info.output_shape}"
                   f"  prior {info.prior}  {info.dtype}  piecewise affine: {info.piecewise_affine}")


@app.command()
@reports_errors
def volumes(generator_id: Annotated[str, typer.Argument(help="Generator id, e.g. digits-gan.")], latents: Latents,
            out: Out = None, top_k: TopK = None,
            tile_codes: Annotated[bool, typer.Option(
                help="Also compute tile codes (counted; written to a .safetensors --out).")] = False,
            method: Annotated[str, typer.Option(
                help="exact (d JVPs per latent), randomized (top-k by randomized SVD; needs --top-k) or projection "
                     "(the published random-projection pipeline, debiased).")] = "exact",
            precision: Annotated[str, typer.Option(
                help="Precision of the Jacobian-vector products: fp32, tf32 or bf16 (float32 generators); the "
                     "Gram matrix stays float64.")] = "fp32",
            target: Target = None, local: Local = False, token: Token = None,
            format: Format = OutputFormat.text) -> None:
    """Per-latent log-volumes 1/2 log det(J^T J) with error estimates; -inf marks a rank-deficient Jacobian."""
    array = files.read_latents(latents)
    _check_out(out)
    with _backend(target, local, token) as backend:
        result = backend.log_volumes(generator_id, array, top_k=top_k, tile_codes=tile_codes, method=method,
                                     precision=precision)
    if out is not None:
        files.write_arrays(out, {"log_volumes": result.log_volumes, "tile_codes": result.tile_codes},
                           main="log_volumes")
    values = result.log_volumes
    finite = values[np.isfinite(values)]
    summary: dict[str, Any] = {
        "generator_id": generator_id, "count": int(values.shape[0]), "rank_deficient": int(np.isneginf(values).sum()),
        "mean": _number(finite.mean()) if finite.size else None, "min": _number(finite.min()) if finite.size else None,
        "max": _number(finite.max()) if finite.size else None, "out": _path(out),
        "method": result.method, "precision": result.precision,
        "mean_error": _number(np.nanmean(result.errors)) if result.errors is not None and values.size else None,
    }
    if result.tile_codes is not None:
        summary["tiles"] = int(np.unique(result.tile_codes).shape[0])
    _report(format, summary, [
        f"log-volumes  {summary['count']} latents of {generator_id}: mean {_short(summary['mean'])}, "
        f"min {_short(summary['min'])}, max {_short(summary['max'])}, rank deficient {summary['rank_deficient']}",
        f"method       {result.method} in {result.precision}, mean error estimate {_short(summary['mean_error'])} nats",
        *([f"tiles        {summary['tiles']} distinct tile codes"] if "tiles" in summary else []),
    ])


@app.command()
@reports_errors
def reweight(generator_id: Annotated[str, typer.Argument(help="Generator id, e.g. digits-gan.")], latents: Latents,
             rho: Rho = 1.0,
             target_density: Annotated[str, typer.Option(
                 "--target-density",
                 help=f"Target density over latents: {' or '.join(TARGETS)} (named so as not to clash with "
                      "--target ADDR, the server).")] = "tilted",
             out: Out = None, target: Target = None, local: Local = False, token: Token = None,
             format: Format = OutputFormat.text) -> None:
    """Normalised log importance weights of the latents, with their effective sample size."""
    array = files.read_latents(latents)
    _check_out(out)
    with _backend(target, local, token) as backend:
        result = backend.reweight(generator_id, array, rho=rho, target=target_density)
    if out is not None:
        files.write_arrays(out, {"log_weights": result.log_weights, "log_volumes": result.log_volumes},
                           main="log_weights")
    summary = {"generator_id": generator_id, "count": int(result.log_weights.shape[0]), "rho": _number(rho),
               "target_density": target_density, "ess": _number(result.ess),
               "max_weight": _number(result.max_weight), "out": _path(out)}
    _report(format, summary, [
        f"weights      {summary['count']} latents of {generator_id}, rho {rho}, target density {target_density}",
        f"ESS          {result.ess:,.1f} of {summary['count']}, max weight {result.max_weight:.3g}",
    ])


@app.command(name="resample")
@reports_errors
def resample_command(
    generator_id: Annotated[str, typer.Argument(help="Generator id, e.g. digits-gan.")],
    n: Annotated[int, typer.Option("--n", help="Debiased latents to draw.")],
    rho: Rho = 1.0,
    proposals: Annotated[int | None, typer.Option(help="Pool size drawn from the prior (default 10 n).")] = None,
    scheme: Annotated[str, typer.Option(help=f"Resampling scheme: {', '.join(SCHEMES)}.")] = "multinomial",
    sampler: Annotated[str, typer.Option(help=f"Sampler: {', '.join(SAMPLERS)} (auto measures a pilot and picks "
                                                "SIR or SMC).")] = "auto",
    max_evaluations: Annotated[int | None, typer.Option(
        help="Budget of log-volume evaluations; SMC/MCMC stop cleanly there and say what they reached.")] = None,
    seed: Annotated[int | None, typer.Option(help="Same seed, same latents (default: a fresh one, reported).")] = None,
    out: Out = None,
    grid: Annotated[Path | None, typer.Option(
        metavar="PNG", help=f"Write a PNG grid of the first {GRID_LIMIT} outputs (image generators).")] = None,
    target: Target = None, local: Local = False, token: Token = None, format: Format = OutputFormat.text,
) -> None:
    """Draw n debiased latents (auto: SIR on a pool where it stays diverse, else tempered SMC), with progress."""
    _check_out(out)
    shown = SamplerProgress(enabled=format is OutputFormat.text)
    with _backend(target, local, token) as backend, shown, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # shown below, with the summary
        result = backend.resample(generator_id, n, rho=rho, proposals=proposals, scheme=scheme, sampler=sampler,
                                  seed=seed, return_outputs=grid is not None, max_evaluations=max_evaluations,
                                  progress=shown.update)
    if out is not None:
        files.write_arrays(out, {"latents": result.latents, "log_weights": result.log_weights,
                                 "indices": result.indices}, main="latents")
    if grid is not None and result.outputs is not None:
        _write_grid(grid, result.outputs[:GRID_LIMIT])
    summary = {"generator_id": generator_id, **result.summary(), "latent_shape": list(result.latents.shape[1:]),
               "out": _path(out), "grid": _path(grid)}
    summary = {key: _number(value) if isinstance(value, float) else value for key, value in summary.items()}
    _report(format, summary, resample_lines(generator_id, result))
    for message in result.warnings:
        typer.secho(f"warning      {message}", fg=typer.colors.YELLOW, err=True)


def resample_lines(generator_id: str, result: Any) -> list[str]:
    """What each sampler did, in the words that fit it (no pool for SMC/MCMC, no SMC schedule for SIR)."""
    count = result.latents.shape[0]
    head = f"resampled    {count} latents {tuple(result.latents.shape)} of {generator_id} ({result.sampler}, seed " \
           f"{result.seed})"
    lines = [head, f"chose        {result.choice}"] if result.choice != "requested" else [head]
    if result.sampler == "sir":
        lines.append(f"pool         {result.proposals} proposals, {result.scheme}; pool ESS {result.pool_ess:,.1f}, "
                     f"max weight {result.max_weight:.3g}")
    elif result.sampler == "smc":
        schedule = result.diagnostics.get("schedule", [])
        lines.append(f"tempering    {len(schedule)} steps of {result.proposals} particles to beta "
                     f"{result.beta:.3g}; log normaliser {result.diagnostics.get('log_normalizer', math.nan):.4g}")
    else:
        lines.append(f"chains       {result.proposals}, acceptance {result.diagnostics['acceptance_rates'][0]:.2f}")
    lines.append(f"ESS          {result.ess:,.1f} of {count} returned, distinct {result.distinct}, "
                 f"{result.evaluations:,} log-volume evaluations ({result.stopped})")
    return lines


@contextmanager
def _backend(target: str | None, local: bool, token: str | None) -> Iterator[Any]:
    """The backend the options name: ``LocalBackend`` for ``--local``, else a ``Client`` to the server."""
    if local and target is not None:
        raise InvalidArgumentError("choose one of --target ADDR (a server) and --local (this process), not both")
    if local:
        from gendebias.cli.local import LocalBackend  # imports torch: only when asked for

        yield LocalBackend()
        return
    with Client(target or os.environ.get("GENDEBIAS_TARGET") or DEFAULT_TARGET, token=token) as client:
        yield client


def _check_out(out: Path | None) -> None:
    if out is not None:
        files.check_suffix(out)


def _write_grid(path: Path, outputs: np.ndarray) -> None:
    import torch

    from gendebias.generators.zoo.grid import write_png_grid

    write_png_grid(torch.from_numpy(np.ascontiguousarray(outputs)), path)


def _report(format: OutputFormat, summary: dict[str, Any], lines: list[str]) -> None:
    if format is OutputFormat.json:
        print_json(summary)
    else:
        for line in lines:
            typer.echo(line)
        if summary.get("out"):
            typer.echo(f"wrote        {summary['out']}")
        if summary.get("grid"):
            typer.echo(f"grid         {summary['grid']}")


def _number(value: Any) -> float | None:
    """A float for JSON: None where it is not finite (NaN acceptance rate, infinite log-volume)."""
    number = float(value)
    return number if math.isfinite(number) else None


def _short(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _path(path: Path | None) -> str | None:
    return None if path is None else str(path)
