"""Where generators run: ``resolve_device("auto" | "cpu" | "cuda" | "cuda:1" | ...)``, shared by the service and
the jobs so both read a device name the same way."""

from __future__ import annotations

import torch

from gendebias.errors import InvalidArgumentError


def resolve_device(name: str) -> torch.device:
    """``"auto"`` is the first CUDA device when one is present, else the CPU; other names must exist here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise InvalidArgumentError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N", field="device") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError(f"device {name!r} asked for, but this machine has no CUDA device; use auto or cpu",
                                   field="device")
    return device
