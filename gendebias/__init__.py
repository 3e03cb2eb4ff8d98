"""gendebias: correct the sampling bias of pretrained generators without retraining them.

The import root. The rooms of the repository map to subpackages (``docs/design.md#rooms-and-imports``):
``geometry/`` is :mod:`gendebias.geometry`, ``generators/`` is :mod:`gendebias.generators`, and so on.
This folder holds only what every room shares: the version and the one error vocabulary
(:mod:`gendebias.errors`). It imports neither torch nor grpc, so the SDK can use it.
"""

from gendebias.errors import (
    AuthenticationError,
    DeadlineExceededError,
    DegenerateWeightsError,
    GendebiasError,
    GeneratorModeError,
    GeneratorSpecError,
    InternalError,
    InvalidArgumentError,
    InvalidLatentsError,
    InvalidTensorError,
    LimitExceededError,
    NumericalError,
    QueueFullError,
    ServiceUnavailableError,
    UnknownGeneratorError,
    UnsupportedError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "DeadlineExceededError",
    "DegenerateWeightsError",
    "GendebiasError",
    "GeneratorModeError",
    "GeneratorSpecError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidLatentsError",
    "InvalidTensorError",
    "LimitExceededError",
    "NumericalError",
    "QueueFullError",
    "ServiceUnavailableError",
    "UnknownGeneratorError",
    "UnsupportedError",
    "__version__",
]
