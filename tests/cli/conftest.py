"""The command line under ``typer.testing.CliRunner``, and a real server on a free port for ``--target``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from click.testing import Result
from typer.testing import CliRunner

from gendebias.cli.main import app
from gendebias.service.testing import running_server


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with running_server() as address:
        yield address


@pytest.fixture
def invoke(tmp_path, monkeypatch) -> Callable[..., Result]:
    """``invoke("volumes", "ramp", ...)`` runs the command in ``tmp_path`` and returns click's ``Result``."""
    monkeypatch.chdir(tmp_path)
    for name in ("GENDEBIAS_TARGET", "GENDEBIAS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return run
