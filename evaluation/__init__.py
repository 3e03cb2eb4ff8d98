"""Evidence metrics for generators: sample quality and diversity, class balance and uniformity tests.

Every metric on features takes ``(N, F)`` torch tensors or numpy arrays, **real first, generated second** (the
convention of the field's libraries), and an optional ``weights``: non-negative importance weights of the generated
samples (any scale; pass ``log_weights.exp()`` for :func:`gendebias.geometry.log_weights`), used instead of
resampled draws. ``docs/evaluation.md`` gives every definition, weighted ones included, with its paper.
"""

from gendebias.evaluation.density_coverage import DensityCoverage, density_coverage
from gendebias.evaluation.frechet import frechet_distance
from gendebias.evaluation.kernel_distance import KernelDistance, kernel_inception_distance
from gendebias.evaluation.precision_recall import PrecisionRecall, precision_recall

__all__ = [
    "DensityCoverage",
    "KernelDistance",
    "PrecisionRecall",
    "density_coverage",
    "frechet_distance",
    "kernel_inception_distance",
    "precision_recall",
]
