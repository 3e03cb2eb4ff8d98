"""What every command shares: one-line domain errors with exit status 1, and JSON output.

A command that needs a part of gendebias the installation lacks (``--local`` and ``--grid`` need the ``library``
extra, ``batch`` the ``jobs`` extra) fails the same way, with the ``pip install`` line that adds it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer

from gendebias._extras import extra_for
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
            _fail(" ".join(str(error).split()) or type(error).__name__)
        except ModuleNotFoundError as error:
            extra = getattr(error, "extra", None) or extra_for(error.name)
            if extra is None:
                raise
            _fail(f"this command needs the '{extra}' extra ({error.name} is not installed): "
                  f"pip install 'gendebias[{extra}]'")

    return run


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1) from None


def print_json(value: dict[str, Any]) -> None:
    typer.echo(json.dumps(value, allow_nan=False))
