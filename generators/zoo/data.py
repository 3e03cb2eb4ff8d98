"""scikit-learn's bundled digits (1,797 real 8x8 images, pixel values 0..16; shipped with the package, no download).

Images are scaled to ``[-1, 1]`` by ``x / 8 - 1``. The train/test split is stratified by label: in every class a
seeded permutation puts ``round(0.2 * class_count)`` images in ``test`` (359 of 1,797 for ``seed=0``) and the rest
in ``train``, so the split depends only on the seed, not on the scikit-learn version.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor

from gendebias.errors import InvalidArgumentError

Split = Literal["all", "train", "test"]
TEST_SHARE = 0.2
"""Share of each class that goes to the ``test`` split."""


def digits(*, split: Split = "all", seed: int = 0) -> tuple[Tensor, Tensor]:
    """Return ``(images, labels)``: images ``(N, 1, 8, 8)`` float32 in ``[-1, 1]``, labels ``(N,)`` int64 in 0..9.

    ``split`` is ``"all"`` (1,797 images, in scikit-learn's order), ``"train"`` or ``"test"`` (the stratified
    80/20 split drawn with ``seed``; indices sorted, so the order is stable).
    """
    if split not in get_args(Split):
        raise InvalidArgumentError(
            f"split must be one of {get_args(Split)}, got {split!r}; use 'train' to fit models and 'test' to score them"
        )
    from sklearn.datasets import load_digits  # scikit-learn is only needed here, and only when called

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32)).reshape(-1, 1, 8, 8) / 8.0 - 1.0
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    if split == "all":
        return images, labels
    test = _test_mask(labels.numpy(), seed=seed)
    keep = torch.from_numpy(test if split == "test" else ~test)
    return images[keep], labels[keep]


def _test_mask(labels: np.ndarray, *, seed: int) -> np.ndarray:
    """``(N,)`` bool: ``round(TEST_SHARE * count)`` seeded picks per class are ``True``."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(labels.shape[0], dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        picked = rng.permutation(members)[: round(TEST_SHARE * members.size)]
        mask[picked] = True
    return mask
