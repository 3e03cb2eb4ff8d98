"""Class balance of generated digits, measured with the zoo's classifier.

Naive sampling (``z ~ N(0, I)``) of a generator need not cover the ten digits evenly; these functions measure by
how much: the class histogram of the classifier's labels, its KL divergence to the uniform distribution over the
classes, and the classifier's mean confidence (a rough quality signal: blurry or ambiguous samples score low).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gendebias.errors import GeneratorModeError, InvalidArgumentError

NUM_CLASSES = 10


@torch.no_grad()
def predictions(images: Tensor, classifier: nn.Module, *, batch_size: int = 2048) -> tuple[Tensor, Tensor]:
    """``(labels, confidences)``: the classifier's argmax label ``(N,)`` int64 and its softmax probability ``(N,)``
    float32 for ``(N, 1, 8, 8)`` images. The classifier must be in eval mode (it is never switched for you)."""
    if classifier.training:
        raise GeneratorModeError("the classifier is in training mode (dropout active); call classifier.eval() first")
    if images.ndim != 4:
        raise InvalidArgumentError(f"images must have shape (N, 1, 8, 8), got {tuple(images.shape)}")
    labels, confidences = [], []
    for batch in images.split(batch_size):
        probabilities = torch.softmax(classifier(batch.float()), dim=1)
        confidence, label = probabilities.max(dim=1)
        labels.append(label)
        confidences.append(confidence)
    return torch.cat(labels), torch.cat(confidences)


def class_histogram(images: Tensor, classifier: nn.Module, *, batch_size: int = 2048) -> Tensor:
    """``(10,)`` int64 counts of the classifier's labels over ``(N, 1, 8, 8)`` images (sums to ``N``)."""
    labels, _ = predictions(images, classifier, batch_size=batch_size)
    return torch.bincount(labels, minlength=NUM_CLASSES)


def mean_confidence(images: Tensor, classifier: nn.Module, *, batch_size: int = 2048) -> float:
    """Mean over ``(N, 1, 8, 8)`` images of the classifier's top softmax probability."""
    _, confidences = predictions(images, classifier, batch_size=batch_size)
    return float(confidences.double().mean())


def kl_to_uniform(histogram: Tensor) -> float:
    """``KL(p || uniform) = sum_k p_k log(K p_k)`` in nats, with ``p = histogram / histogram.sum()`` over ``K`` bins
    and ``0 log 0 = 0``: 0 for a uniform histogram, ``log K`` when all mass is in one bin."""
    counts = histogram.detach().double().flatten()
    if counts.numel() == 0 or bool((counts < 0).any()) or float(counts.sum()) <= 0:
        raise InvalidArgumentError("histogram must hold non-negative counts or shares with a positive sum")
    shares = counts / counts.sum()
    present = shares > 0
    return float((shares[present] * torch.log(shares[present] * counts.numel())).sum())


def balance_table(histogram: Tensor) -> str:
    """A Markdown table of counts and shares per digit for a ``(10,)`` histogram (the model card copies it)."""
    counts = histogram.tolist()
    total = sum(counts)
    digits = " | ".join(str(digit) for digit in range(len(counts)))
    lines = [
        f"| | {digits} |",
        "|---" * (len(counts) + 1) + "|",
        "| count | " + " | ".join(str(count) for count in counts) + " |",
        "| share | " + " | ".join(f"{count / total:.3f}" for count in counts) + " |",
    ]
    return "\n".join(lines)

