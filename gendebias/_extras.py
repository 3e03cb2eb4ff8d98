"""Optional parts of the distribution, and a clear error when a part is imported without its extra.

``pip install gendebias`` installs the SDK (:mod:`gendebias.clients`), the wire contract (:mod:`gendebias.v1`) and
the remote commands of the ``gendebias`` CLI: no torch. The other rooms need an extra (see ``pyproject.toml`` and
``docs/sdk.md#installing``); each one calls :func:`require_extra` first thing in its ``__init__.py``, so importing
it without its extra raises :class:`MissingExtraError` naming the extra to install, instead of a bare
``No module named 'torch'`` from somewhere inside. Nothing here imports the modules it checks.
"""

from __future__ import annotations

import importlib.util
import sys

EXTRAS: dict[str, tuple[str, ...]] = {
    "library": ("torch", "safetensors"),
    "server": ("torch", "safetensors", "grpc_health", "grpc_reflection", "prometheus_client"),
    "jobs": ("torch", "safetensors", "pyarrow"),
}
"""The top-level modules each extra brings that a room cannot be imported without, by extra name."""

EXTRA_OF_MODULE: dict[str, str] = {
    "torch": "library",
    "safetensors": "library",
    "grpc_reflection": "server",
    "prometheus_client": "server",
    "pyarrow": "jobs",
    "ray": "jobs",
    "diffusers": "diffusers",
    "sklearn": "zoo",
}
"""Which extra installs a missing top-level module (for messages about a ``ModuleNotFoundError``)."""


class MissingExtraError(ModuleNotFoundError):
    """A part of gendebias was imported without the extra that installs what it needs.

    ``name`` is the first missing module (as for any ``ModuleNotFoundError``), ``extra`` the extra to install.
    """

    def __init__(self, part: str, extra: str, missing: list[str]) -> None:
        super().__init__(f"{part} needs the '{extra}' extra ({', '.join(missing)} not installed): "
                         f"pip install 'gendebias[{extra}]'", name=missing[0])
        self.extra = extra
        self.missing = tuple(missing)


def require_extra(part: str, extra: str) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``EXTRAS[extra]`` can be imported.

    Args:
        part: what is being imported, for the message (e.g. ``"gendebias.geometry"``).
        extra: a key of :data:`EXTRAS`.
    """
    missing = [module for module in EXTRAS[extra] if not _installed(module)]
    if missing:
        raise MissingExtraError(part, extra, missing)


def extra_for(module: str | None) -> str | None:
    """The extra that installs top-level ``module`` (``"torch.nn"`` counts as ``"torch"``), or None."""
    if not module:
        return None
    return EXTRA_OF_MODULE.get(module.partition(".")[0])


def _installed(module: str) -> bool:
    if module in sys.modules:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
