"""The numbers of one drawn sample: quality and diversity against a real feature set, and class balance.

:func:`sample_scores` scores generated images ``(M, ...)`` with the metrics of this package (``docs/evaluation.md``):
precision and recall (``k = 3``), density and coverage (``k = 5``) and the Fréchet distance of their features to the
real ones (None without a real set), and, with a classifier, the class balance of its argmax labels against uniform:
KL divergence, total variation and the fairness discrepancy of Choi et al. 2020 (None without a classifier). The
same function scores samples drawn in this process and samples a server returned (:mod:`.remote`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gendebias.evaluation.balance import balance
from gendebias.evaluation.density_coverage import density_coverage
from gendebias.evaluation.features import extract_features
from gendebias.evaluation.frechet import frechet_distance
from gendebias.evaluation.precision_recall import precision_recall

Classifier = Callable[[Tensor], Tensor]
"""Images ``(N, ...)`` -> ``(N, C)`` class probabilities (rows of a softmax)."""

QUALITY = ("precision", "recall", "density", "coverage", "fid")
BALANCE = ("kl", "tv", "fairness")


@dataclass(frozen=True)
class Reference:
    """A real (or reference) feature set to score against: ``features`` ``(N, F)``, the ``extractor`` that made them
    (generated images go through the same one) and a ``label`` saying what the set is."""

    features: Tensor
    extractor: Callable[[Tensor], Tensor]
    label: str


def sample_scores(images: Tensor, *, reference: Reference | None, classifier: Classifier | None
                  ) -> dict[str, float | None]:
    """``{metric: value}`` for :data:`QUALITY` and :data:`BALANCE` (module docstring); None where the reference or
    the classifier is missing."""
    scores: dict[str, float | None] = dict.fromkeys(QUALITY + BALANCE)
    if reference is not None:
        generated = extract_features(images, reference.extractor)
        real = reference.features.to(generated)
        fidelity = precision_recall(real, generated, k=3)
        density = density_coverage(real, generated, k=5)
        scores.update(precision=fidelity.precision, recall=fidelity.recall, density=density.density,
                      coverage=density.coverage, fid=frechet_distance(real, generated))
    if classifier is not None:
        probabilities = class_probabilities(images, classifier)
        labels = probabilities.argmax(dim=1)
        measured = balance(labels, classes=probabilities.shape[1])
        scores.update(kl=measured.kl_divergence, tv=measured.total_variation,
                      fairness=measured.fairness_discrepancy)
    return scores


@torch.no_grad()
def class_probabilities(images: Tensor, classifier: Classifier, *, batch_size: int = 2048) -> Tensor:
    """``(N, C)`` float64 probabilities of ``classifier`` on ``images``, in batches, in the classifier's dtype."""
    parameter = next(iter(classifier.parameters()), None) if isinstance(classifier, nn.Module) else None
    chunks = []
    for batch in images.split(batch_size):
        if parameter is not None:
            batch = batch.to(device=parameter.device, dtype=parameter.dtype)
        chunks.append(classifier(batch).to(torch.float64).cpu())
    return torch.cat(chunks)
