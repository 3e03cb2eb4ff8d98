"""``gendebias batch volumes|resample``: the batch jobs of :mod:`gendebias.jobs` from the shell.

Re-running the same command resumes: finished shards are skipped, and the result is byte-identical to an
uninterrupted run. The final summary is printed as JSON; progress goes to stderr. :mod:`gendebias.jobs` is imported
only when a command runs, so the rest of the CLI works without the ``jobs`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gendebias.cli.common import print_json, reports_errors
from gendebias.errors import InvalidArgumentError

batch = typer.Typer(name="batch", no_args_is_help=True, help="Sharded, resumable jobs over millions of latents.")

Generator = Annotated[str, typer.Option("--generator", help="Generator id, spec file or diffusers folder.")]
Out = Annotated[Path, typer.Option("--out", metavar="DIR", help="Output folder (re-run to resume).")]
ShardSize = Annotated[int, typer.Option("--shard-size", help="Latents per shard (one Parquet file each).")]
Engine = Annotated[str, typer.Option("--engine", help="local (this process) or ray (Ray Data actors).")]
RayAddress = Annotated[str | None, typer.Option("--ray-address", envvar="RAY_ADDRESS",
                                                help="Ray cluster address (default: a local Ray instance).")]
Workers = Annotated[int | None, typer.Option("--workers", help="Ray actors (default: CPUs - 1).")]
ChunkSize = Annotated[int, typer.Option("--chunk-size", help="Latents per Jacobian batch (64 is fastest on CPU).")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress lines on stderr.")]
Device = Annotated[str, typer.Option("--device", help="auto (a GPU when present), cpu, cuda or cuda:N; on Ray, "
                                                      "a GPU per actor.")]


@batch.command("volumes")
@reports_errors
def volumes(generator: Generator, latents: Annotated[Path, typer.Option(
                "--latents", metavar="FILE", help="(N, *latent_shape) latents: .npy, .safetensors or .parquet.")],
            out: Out, shard_size: ShardSize = 65_536, engine: Engine = "local", ray_address: RayAddress = None,
            workers: Workers = None, chunk_size: ChunkSize = 64,
            top_k: Annotated[int | None, typer.Option("--top-k", help="Keep the K largest singular values.")] = None,
            tile_codes: Annotated[bool, typer.Option("--tile-codes", help="Also store tile codes.")] = False,
            device: Device = "auto", quiet: Quiet = False) -> None:
    """Log-volumes of every latent of a file, as Parquet shards with a manifest."""
    from gendebias.jobs import run_volumes

    print_json(run_volumes(generator, latents, out, shard_size=shard_size, engine=engine, top_k=top_k,
                           tile_codes=tile_codes, chunk_size=chunk_size, workers=workers, ray_address=ray_address,
                           progress=not quiet, device=device))


@batch.command("resample")
@reports_errors
def resample(generator: Generator, out: Out,
             proposals: Annotated[float, typer.Option("--proposals", help="Prior proposals (1e6 is fine).")],
             n: Annotated[float, typer.Option("--n", help="Debiased latents to draw.")],
             rho: Annotated[float, typer.Option("--rho", help="Exponent of the volume (1 = MaGNET).")] = 1.0,
             seed: Annotated[int, typer.Option("--seed", help="Seed of proposals and draws.")] = 0,
             sampler: Annotated[str, typer.Option("--sampler", help="auto (a pilot picks), sir (one pool) or smc "
                                                                     "(a population per shard, weighted by its "
                                                                     "normaliser).")] = "auto",
             shard_size: ShardSize = 65_536, engine: Engine = "local", ray_address: RayAddress = None,
             workers: Workers = None, chunk_size: ChunkSize = 64, device: Device = "auto",
             quiet: Quiet = False) -> None:
    """Draw n debiased latents from seeded prior proposals; writes resampled.parquet and summary.json."""
    from gendebias.jobs import run_resample

    print_json(run_resample(generator, out, proposals_count=_count(proposals, "proposals"), n=_count(n, "n"),
                            rho=rho, seed=seed, sampler=sampler, shard_size=shard_size, engine=engine,
                            chunk_size=chunk_size, workers=workers, ray_address=ray_address, progress=not quiet,
                            device=device))


def _count(value: float, name: str) -> int:
    if value != int(value):
        raise InvalidArgumentError(f"--{name} must be a whole number, got {value}", field=name)
    return int(value)
