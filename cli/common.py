"""What every command shares: one-line domain errors with exit status 1, and JSON output."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer

from gendebias.errors import GendebiasError

P = ParamSpec("P")
R = TypeVar("R")


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a domain error into one ``error: <message>`` line on stderr and exit status 1 (no traceback)."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (GendebiasError, OSError) as error:
            message = " ".join(str(error).split()) or type(error).__name__
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(1) from None

    return run


def print_json(value: dict[str, Any]) -> None:
    typer.echo(json.dumps(value, allow_nan=False))
