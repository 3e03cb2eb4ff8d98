"""Tiny seeded generators built in code, shared by the tests."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import pytest
import torch
from torch import nn


def make_mlp(widths: list[int], *, slope: float = 0.2, dtype: torch.dtype = torch.float64, seed: int = 0,
             scale: float = 1.0) -> nn.Sequential:
    """A leaky-ReLU MLP ``widths[0] -> ... -> widths[-1]`` in eval mode, weights ``scale``-times the default init."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for index, (width_in, width_out) in enumerate(pairwise(widths)):
        layers.append(nn.Linear(width_in, width_out))
        if index < len(widths) - 2:
            layers.append(nn.LeakyReLU(slope))
    mlp = nn.Sequential(*layers).to(dtype).eval()
    with torch.no_grad():
        for parameter in mlp.parameters():
            parameter.mul_(scale)
    return mlp


@pytest.fixture
def mlp() -> Callable[..., nn.Sequential]:
    return make_mlp
