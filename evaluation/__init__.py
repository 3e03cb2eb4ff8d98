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
from gendebias.evaluation.evaluate import Evaluation, LogVolumeCache, evaluate
from gendebias.evaluation.features import (
    EXTRACTORS,
    DigitsFeatures,
    PixelFeatures,
    extract_features,
    load_extractor,
)
from gendebias.evaluation.frechet import frechet_distance
from gendebias.evaluation.kernel_distance import KernelDistance, kernel_inception_distance
from gendebias.evaluation.methods import DEFAULT_METHODS, Method, parse_method
from gendebias.evaluation.precision_recall import PrecisionRecall, precision_recall
from gendebias.evaluation.references import load_reference
from gendebias.evaluation.remote import evaluate_remote
from gendebias.evaluation.scores import Reference
from gendebias.evaluation.table import Estimate, Row, Table
from gendebias.evaluation.uniformity import GoodnessOfFit, chi_square_test, ks_test

__all__ = [
    "DEFAULT_METHODS",
    "EXTRACTORS",
    "Balance",
    "DensityCoverage",
    "DigitsFeatures",
    "Estimate",
    "Evaluation",
    "GoodnessOfFit",
    "KernelDistance",
    "LogVolumeCache",
    "Method",
    "PixelFeatures",
    "PrecisionRecall",
    "Reference",
    "Row",
    "Table",
    "balance",
    "chi_square_test",
    "class_distribution",
    "density_coverage",
    "evaluate",
    "evaluate_remote",
    "extract_features",
    "fairness_discrepancy",
    "frechet_distance",
    "kernel_inception_distance",
    "kl_divergence",
    "ks_test",
    "load_extractor",
    "load_reference",
    "parse_method",
    "precision_recall",
    "total_variation",
]
