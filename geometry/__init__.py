"""Pure-torch geometry of generators: Jacobians, log-volumes, tile codes, weights and resamplers.

Data flows one way: ``latents -> generator -> jacobian -> log_volume -> log_weights -> resample``
(``docs/design.md#rooms-and-imports``).
This package imports no grpc, protobuf, environment variables or files.
"""

from gendebias._extras import require_extra

require_extra("gendebias.geometry", "library")  # before any import that needs the extra

from gendebias.geometry.activations import Nonlinearities
from gendebias.geometry.estimate import LogVolumeEstimate
from gendebias.geometry.jacobian import jacobian
from gendebias.geometry.mcmc import MCMCSettings, MCMCTrace
from gendebias.geometry.progress import Progress
from gendebias.geometry.resample import Rejection, rejection_sample, resample
from gendebias.geometry.sampling import SAMPLERS, SampleResult, sample, sample_options
from gendebias.geometry.sir import SIRSettings, SIRTrace, resample_pool
from gendebias.geometry.smc import SMCSettings, SMCTrace
from gendebias.geometry.tiles import is_piecewise_affine, nonlinearities, tile_codes
from gendebias.geometry.volume import (
    log_volume,
    log_volume_estimate,
    log_volume_from_jacobians,
    singular_values,
    singular_values_from_jacobians,
)
from gendebias.geometry.weights import (
    BalancedWeights,
    balanced_log_weights,
    effective_sample_size,
    log_weights,
    max_weight,
)

__all__ = [
    "SAMPLERS",
    "BalancedWeights",
    "LogVolumeEstimate",
    "MCMCSettings",
    "MCMCTrace",
    "Nonlinearities",
    "Progress",
    "Rejection",
    "SIRSettings",
    "SIRTrace",
    "SMCSettings",
    "SMCTrace",
    "SampleResult",
    "balanced_log_weights",
    "effective_sample_size",
    "is_piecewise_affine",
    "jacobian",
    "log_volume",
    "log_volume_estimate",
    "log_volume_from_jacobians",
    "log_weights",
    "max_weight",
    "nonlinearities",
    "rejection_sample",
    "resample",
    "resample_pool",
    "sample",
    "sample_options",
    "singular_values",
    "singular_values_from_jacobians",
    "tile_codes",
]
