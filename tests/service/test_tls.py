"""TLS end to end: ``gendebias serve --config`` with a certificate signed by a CA made here, the SDK trusting that
CA computes log-volumes; a plaintext client and a client trusting another CA are refused."""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from gendebias.clients import Client
from gendebias.errors import InvalidArgumentError, ServiceUnavailableError
from gendebias.generators import load_generator
from gendebias.geometry import log_volume
from gendebias.service.config import resolve_config
from gendebias.service.testing import running_server

OPENSSL = "/usr/bin/openssl"
pytestmark = pytest.mark.skipif(not Path(OPENSSL).exists(), reason="needs the openssl command")


def openssl(*args: str) -> None:
    subprocess.run([OPENSSL, *args], check=True, capture_output=True, timeout=60)


def authority(folder: Path, name: str) -> tuple[Path, Path]:
    """``(certificate, key)`` of a self-signed certificate authority."""
    certificate, key = folder / f"{name}.pem", folder / f"{name}.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign", "-keyout", str(key), "-out", str(certificate))
    return certificate, key


@pytest.fixture(scope="module")
def tls_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 it signed (``server.pem``, ``server.key``), and an unrelated CA."""
    folder = tmp_path_factory.mktemp("tls")
    ca, ca_key = authority(folder, "ca")
    authority(folder, "other-ca")
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(folder / "server.key"), "-out", str(folder / "server.csr"))
    openssl("x509", "-req", "-in", str(folder / "server.csr"), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "1", "-extfile", str(folder / "san.cnf"), "-out", str(folder / "server.pem"))
    return folder


def config_file(folder: Path, port: int) -> Path:
    """A ``[server]`` table naming the certificate and key relative to the file, as a deployment would."""
    config = folder / "server.toml"
    config.write_text(f'[server]\nhost = "127.0.0.1"\nport = {port}\ntls_cert = "server.pem"\n'
                      'tls_key = "server.key"\ngrace_seconds = 0\n')
    return config


@contextmanager
def served_with_tls(folder: Path):
    """``gendebias serve --config server.toml`` in a subprocess started elsewhere (``cwd=/``); yields the address
    once a TLS health check answers SERVING."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = config_file(folder, port)
    code = "import sys; from gendebias.cli.main import app; sys.argv[0] = 'gendebias'; app()"
    environment = {name: value for name, value in os.environ.items() if not name.startswith("GENDEBIAS_")}
    process = subprocess.Popen([sys.executable, "-c", code, "serve", "--config", str(config)], cwd="/",
                               env=environment, stderr=subprocess.PIPE, text=True)
    address = f"127.0.0.1:{port}"
    try:
        with Client(address, root_certificates=(folder / "ca.pem").read_bytes(), timeout=5) as client:
            stop = time.monotonic() + 120
            while True:
                assert process.poll() is None, process.stderr.read() if process.stderr else "serve exited"
                try:
                    if client.health() == "SERVING":
                        break
                except ServiceUnavailableError:
                    assert time.monotonic() < stop, "the TLS server never answered"
                    time.sleep(0.2)
        yield address
    finally:
        process.kill()
        process.wait(timeout=30)


def check_tls(address: str, folder: Path) -> None:
    """The SDK trusting the CA gets digits-gan's exact log-volumes; plaintext and another CA's trust are refused
    with UNAVAILABLE (the handshake fails, nothing is served), and the server keeps serving."""
    latents = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    expected = log_volume(load_generator("digits-gan"), torch.from_numpy(latents)).numpy()
    with Client(address, root_certificates=(folder / "ca.pem").read_bytes(), timeout=30) as client:
        np.testing.assert_allclose(client.log_volumes("digits-gan", latents).log_volumes, expected, rtol=1e-5)
        with Client(address, timeout=5) as plaintext, pytest.raises(ServiceUnavailableError):
            plaintext.list_generators()
        with Client(address, root_certificates=(folder / "other-ca.pem").read_bytes(), timeout=5) as wrong, \
                pytest.raises(ServiceUnavailableError):
            wrong.list_generators()
        assert client.health() == "SERVING"
        assert len(client.list_generators()) == 5


def test_tls_through_the_config_file(tls_folder, monkeypatch):
    """The config path of ``serve`` (``resolve_config`` of a file, then ``start_server``) in this process, run from
    another directory so that the relative certificate paths must be resolved against the file."""
    monkeypatch.chdir("/")
    config = resolve_config(file=config_file(tls_folder, 0), env={})
    assert config.tls_cert == str(tls_folder / "server.pem")
    with running_server(config) as address:
        check_tls(address, tls_folder)


@pytest.mark.slow
def test_tls_through_the_serve_command(tls_folder):
    with served_with_tls(tls_folder) as address:
        check_tls(address, tls_folder)


def test_an_unreadable_certificate_stops_the_server_at_start_naming_the_setting(tls_folder):
    config = resolve_config(flags={"tls_cert": str(tls_folder / "missing.pem"),
                                   "tls_key": str(tls_folder / "server.key")}, env={})
    with pytest.raises(InvalidArgumentError, match=r"cannot read tls_cert .*missing\.pem: FileNotFoundError"), \
            running_server(config):
        pass
