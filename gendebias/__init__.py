"""gendebias: correct the sampling bias of pretrained generators without retraining them.

The import root. The rooms of the repository map to subpackages (DESIGN.md §2):
``geometry/`` is :mod:`gendebias.geometry`, ``generators/`` is :mod:`gendebias.generators`, and so on.
This folder holds only what every room shares: the version and the one error vocabulary
(:mod:`gendebias.errors`).
"""

from gendebias.errors import (
    DegenerateWeightsError,
    GendebiasError,
    GeneratorModeError,
    GeneratorSpecError,
    InvalidArgumentError,
    NumericalError,
    UnknownGeneratorError,
)

__version__ = "0.1.0"

__all__ = [
    "DegenerateWeightsError",
    "GendebiasError",
    "GeneratorModeError",
    "GeneratorSpecError",
    "InvalidArgumentError",
    "NumericalError",
    "UnknownGeneratorError",
    "__version__",
]
