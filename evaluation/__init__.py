"""Evidence metrics for generators: sample quality and diversity, class balance and uniformity tests.

Every metric on features takes ``(N, F)`` torch tensors or numpy arrays, **real first, generated second** (the
convention of the field's libraries), and an optional ``weights``: non-negative importance weights of the generated
samples (any scale; pass ``log_weights.exp()`` for :func:`gendebias.geometry.log_weights`), used instead of
resampled draws. ``docs/evaluation.md`` gives every definition, weighted ones included, with its paper.
"""

from gendebias._extras import require_extra

require_extra("gendebias.evaluation", "library")  # before any import that needs the extra

from gendebias.evaluation.balance import (
    Balance,
    balance,
    class_distribution,
    fairness_discrepancy,
    kl_divergence,
    total_variation,
)
from gendebias.evaluation.density_coverage import DensityCoverage, density_coverage
from gendebias.evaluation.features import (
    EXTRACTORS,
    DigitsFeatures,
    PixelFeatures,
    extract_features,
    load_extractor,
)
from gendebias.evaluation.frechet import frechet_distance
from gendebias.evaluation.kernel_distance import KernelDistance, kernel_inception_distance
from gendebias.evaluation.precision_recall import PrecisionRecall, precision_recall
from gendebias.evaluation.uniformity import GoodnessOfFit, chi_square_test, ks_test

__all__ = [
    "EXTRACTORS",
    "Balance",
    "DensityCoverage",
    "DigitsFeatures",
    "GoodnessOfFit",
    "KernelDistance",
    "PixelFeatures",
    "PrecisionRecall",
    "balance",
    "chi_square_test",
    "class_distribution",
    "density_coverage",
    "extract_features",
    "fairness_discrepancy",
    "frechet_distance",
    "kernel_inception_distance",
    "kl_divergence",
    "ks_test",
    "load_extractor",
    "precision_recall",
    "total_variation",
]
