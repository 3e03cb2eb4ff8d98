import pytest
import torch

from gendebias.errors import InvalidArgumentError
from gendebias.generators import resolve_device


def test_auto_is_a_gpu_when_present_else_the_cpu():
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_unknown_or_absent_devices_are_refused():
    with pytest.raises(InvalidArgumentError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidArgumentError, match="no CUDA device; use auto or cpu"):
            resolve_device("cuda:1")
