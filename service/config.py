"""Server configuration, resolved once: CLI flag > ``GENDEBIAS_*`` env var > TOML file > default.

Every setting is listed in ``docs/service.md#configuration``.

The TOML file holds a ``[server]`` table with the field names below (the file paths ``registry``, ``token_file``,
``tls_cert`` and ``tls_key`` relative to the file). The result
is a frozen :class:`ServiceConfig` passed down to every part of the server; nothing else reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gendebias.errors import InvalidArgumentError

ENV_PREFIX = "GENDEBIAS_"
TOKEN_SOURCES = {"token", "token_file"}
PATHS = ("registry", "token_file", "tls_cert", "tls_key")  # a relative path in a config file is relative to it


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the server needs to know; defaults serve the built-in zoo on port 50051."""

    host: str = "[::]"
    port: int = 50051
    metrics_port: int | None = None  # Prometheus /metrics on this HTTP port; None = off, 0 = any free port
    registry: str | None = None  # registry TOML of generators; None = the built-in zoo
    device: str = "auto"  # "auto" (cuda when present), "cpu", "cuda", "cuda:1", ...
    token: str | None = dataclasses.field(default=None, repr=False)  # bearer token required on every RPC but
    # health and reflection; never in repr, so never in a log line that prints the config
    token_file: str | None = None  # a file holding the token (read once at start, stripped): not visible in `ps`
    tls_cert: str | None = None  # PEM files; both set = TLS
    tls_key: str | None = None
    max_latents: int = 1_000_000  # latents in one ComputeLogVolumes/Reweight request
    max_n: int = 100_000  # debiased latents in one Resample
    max_proposals: int = 1_000_000  # pool size of one Resample (SIR), particles or chains (SMC/MCMC)
    max_evaluations: int = 2_000_000  # log-volume evaluations of one SMC/MCMC Resample
    max_batch: int = 256  # latents per Jacobian batch on the device
    max_delay_ms: float = 5.0  # how long the engine waits to fill a batch
    queue_size: int = 10_000  # pending jobs before RESOURCE_EXHAUSTED
    message_bytes: int = 1 << 20  # data bytes per streamed response message
    grace_seconds: float = 10.0  # graceful shutdown window on SIGTERM


FIELDS = {field.name: field for field in dataclasses.fields(ServiceConfig)}


def resolve_config(*, flags: Mapping[str, Any] | None = None, file: str | Path | None = None,
                   env: Mapping[str, str] | None = None) -> ServiceConfig:
    """Merge the sources in priority order into a validated :class:`ServiceConfig`.

    Args:
        flags: values from the command line by field name; None values are ignored.
        file: a TOML file with a ``[server]`` table.
        env: environment (default ``os.environ``); ``GENDEBIAS_PORT=50052`` sets ``port``.
    """
    environment = os.environ if env is None else env
    from_env = {name: _parse(name, environment[f"{ENV_PREFIX}{name.upper()}"], f"{ENV_PREFIX}{name.upper()}")
                for name in FIELDS if f"{ENV_PREFIX}{name.upper()}" in environment}
    values: dict[str, Any] = {}
    for source in (_from_file(Path(file)) if file is not None else {}, from_env,
                   {name: value for name, value in (flags or {}).items() if value is not None}):
        if source.keys() & TOKEN_SOURCES:  # token and token_file are one setting: the higher source replaces both
            if source.keys() >= TOKEN_SOURCES:
                raise InvalidArgumentError("set token or token_file, not both, in one source of settings")
            for name in TOKEN_SOURCES:
                values.pop(name, None)
        values.update(source)
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InvalidArgumentError(f"unknown server settings {unknown}; known settings: {sorted(FIELDS)}")
    if values.get("token_file") is not None:
        values["token"] = _read_token(Path(values["token_file"]))
    config = ServiceConfig(**values)
    _check(config)
    return config


def _read_token(path: Path) -> str:
    """The token a ``token_file`` holds, stripped of surrounding whitespace (errors never quote the file)."""
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidArgumentError(f"cannot read token_file {path}: {type(error).__name__}") from None
    if not token:
        raise InvalidArgumentError(f"token_file {path} is empty")
    return token


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise InvalidArgumentError(f"cannot read server config {path}: {error}") from None
    table = dict(data.get("server", {}))
    for name in PATHS:
        if name in table:
            table[name] = str((path.parent / table[name]).resolve())
    return table


def _parse(name: str, text: str, source: str) -> Any:
    kind = FIELDS[name].type
    try:
        if "int" in str(kind):
            return int(text)
        if "float" in str(kind):
            return float(text)
    except ValueError:
        raise InvalidArgumentError(f"{source}={text!r} is not a number") from None
    return text


def _check(config: ServiceConfig) -> None:
    positive = ["max_latents", "max_n", "max_proposals", "max_evaluations", "max_batch", "queue_size",
                "message_bytes"]
    for name in positive:
        if getattr(config, name) < 1:
            raise InvalidArgumentError(f"server setting {name} must be >= 1, got {getattr(config, name)}")
    if not 0 <= config.port < 65536:
        raise InvalidArgumentError(f"port must be in [0, 65535], got {config.port}")
    if (config.tls_cert is None) != (config.tls_key is None):
        raise InvalidArgumentError("TLS needs both tls_cert and tls_key")
