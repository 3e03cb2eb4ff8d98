"""A real server on a free port, and the SDK under test in both of its forms (``Client`` and ``AsyncClient``)."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gendebias.clients import AsyncClient, Client
from gendebias.service.config import ServiceConfig
from gendebias.service.testing import running_server

TOKEN = "s3cret"


class BlockingAsyncClient:
    """``AsyncClient`` behind the blocking interface: each call runs in ``asyncio.run`` on a fresh channel, so a test
    written once exercises both clients."""

    def __init__(self, target: str, **options: Any) -> None:
        self.target = target
        self.options = options

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            async def run() -> Any:
                async with AsyncClient(self.target, **self.options) as client:
                    return await getattr(client, name)(*args, **kwargs)

            return asyncio.run(run())

        return call

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with running_server() as address:
        yield address


@pytest.fixture
def token() -> str:
    return TOKEN


@pytest.fixture(scope="module")
def token_target() -> Iterator[str]:
    with running_server(dataclasses.replace(ServiceConfig(), token=TOKEN)) as address:
        yield address


@pytest.fixture(params=["Client", "AsyncClient"])
def connect(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``connect(target, **options)`` -> a client of the parametrized kind (closed after the test)."""
    made: list[Any] = []

    def make(address: str, **options: Any) -> Any:
        client = Client(address, **options) if request.param == "Client" else BlockingAsyncClient(address, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(connect: Callable[..., Any], target: str) -> Any:
    return connect(target)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(certificate, key)`` PEM files of a self-signed certificate for 127.0.0.1 (skips without openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(certificate), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return certificate, key


@pytest.fixture(scope="module")
def tls_target(tls_files: tuple[Path, Path]) -> Iterator[str]:
    certificate, key = tls_files
    with running_server(dataclasses.replace(ServiceConfig(), tls_cert=str(certificate), tls_key=str(key))) as address:
        yield address
