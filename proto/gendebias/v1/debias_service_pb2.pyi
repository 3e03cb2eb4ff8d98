from gendebias.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Target(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TARGET_UNSPECIFIED: _ClassVar[Target]
    TARGET_TILTED: _ClassVar[Target]
    TARGET_UNIFORM: _ClassVar[Target]
    TARGET_BALANCED: _ClassVar[Target]

class Scheme(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCHEME_UNSPECIFIED: _ClassVar[Scheme]
    SCHEME_MULTINOMIAL: _ClassVar[Scheme]
    SCHEME_SYSTEMATIC: _ClassVar[Scheme]
    SCHEME_WITHOUT_REPLACEMENT: _ClassVar[Scheme]
    SCHEME_REJECTION: _ClassVar[Scheme]

class Sampler(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SAMPLER_UNSPECIFIED: _ClassVar[Sampler]
    SAMPLER_SIR: _ClassVar[Sampler]
    SAMPLER_SMC: _ClassVar[Sampler]
    SAMPLER_MCMC: _ClassVar[Sampler]
    SAMPLER_AUTO: _ClassVar[Sampler]

class Method(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METHOD_UNSPECIFIED: _ClassVar[Method]
    METHOD_EXACT: _ClassVar[Method]
    METHOD_RANDOMIZED: _ClassVar[Method]
    METHOD_PROJECTION: _ClassVar[Method]

class Precision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRECISION_UNSPECIFIED: _ClassVar[Precision]
    PRECISION_FP32: _ClassVar[Precision]
    PRECISION_TF32: _ClassVar[Precision]
    PRECISION_BF16: _ClassVar[Precision]
TARGET_UNSPECIFIED: Target
TARGET_TILTED: Target
TARGET_UNIFORM: Target
TARGET_BALANCED: Target
SCHEME_UNSPECIFIED: Scheme
SCHEME_MULTINOMIAL: Scheme
SCHEME_SYSTEMATIC: Scheme
SCHEME_WITHOUT_REPLACEMENT: Scheme
SCHEME_REJECTION: Scheme
SAMPLER_UNSPECIFIED: Sampler
SAMPLER_SIR: Sampler
SAMPLER_SMC: Sampler
SAMPLER_MCMC: Sampler
SAMPLER_AUTO: Sampler
METHOD_UNSPECIFIED: Method
METHOD_EXACT: Method
METHOD_RANDOMIZED: Method
METHOD_PROJECTION: Method
PRECISION_UNSPECIFIED: Precision
PRECISION_FP32: Precision
PRECISION_TF32: Precision
PRECISION_BF16: Precision

class ListGeneratorsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListGeneratorsResponse(_message.Message):
    __slots__ = ("generators",)
    GENERATORS_FIELD_NUMBER: _ClassVar[int]
    generators: _containers.RepeatedCompositeFieldContainer[GeneratorInfo]
    def __init__(self, generators: _Optional[_Iterable[_Union[GeneratorInfo, _Mapping]]] = ...) -> None: ...

class GetGeneratorRequest(_message.Message):
    __slots__ = ("generator_id",)
    GENERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    generator_id: str
    def __init__(self, generator_id: _Optional[str] = ...) -> None: ...

class GetGeneratorResponse(_message.Message):
    __slots__ = ("generator",)
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    generator: GeneratorInfo
    def __init__(self, generator: _Optional[_Union[GeneratorInfo, _Mapping]] = ...) -> None: ...

class GeneratorInfo(_message.Message):
    __slots__ = ("generator_id", "description", "kind", "latent_shape", "output_shape", "prior", "prior_parameters", "piecewise_affine", "smooth_operations", "classes", "frozen_noise", "dtype")
    class PriorParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    GENERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LATENT_SHAPE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SHAPE_FIELD_NUMBER: _ClassVar[int]
    PRIOR_FIELD_NUMBER: _ClassVar[int]
    PRIOR_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    PIECEWISE_AFFINE_FIELD_NUMBER: _ClassVar[int]
    SMOOTH_OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    FROZEN_NOISE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    generator_id: str
    description: str
    kind: str
    latent_shape: _containers.RepeatedScalarFieldContainer[int]
    output_shape: _containers.RepeatedScalarFieldContainer[int]
    prior: str
    prior_parameters: _containers.ScalarMap[str, float]
    piecewise_affine: bool
    smooth_operations: _containers.RepeatedScalarFieldContainer[str]
    classes: int
    frozen_noise: bool
    dtype: _tensor_pb2.DataType
    def __init__(self, generator_id: _Optional[str] = ..., description: _Optional[str] = ..., kind: _Optional[str] = ..., latent_shape: _Optional[_Iterable[int]] = ..., output_shape: _Optional[_Iterable[int]] = ..., prior: _Optional[str] = ..., prior_parameters: _Optional[_Mapping[str, float]] = ..., piecewise_affine: _Optional[bool] = ..., smooth_operations: _Optional[_Iterable[str]] = ..., classes: _Optional[int] = ..., frozen_noise: _Optional[bool] = ..., dtype: _Optional[_Union[_tensor_pb2.DataType, str]] = ...) -> None: ...

class ComputeLogVolumesRequest(_message.Message):
    __slots__ = ("generator_id", "latents", "top_k", "return_singular_values", "return_tile_codes", "label", "method", "precision", "power_iterations", "projection_dim", "seed")
    GENERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    RETURN_SINGULAR_VALUES_FIELD_NUMBER: _ClassVar[int]
    RETURN_TILE_CODES_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    POWER_ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_DIM_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    generator_id: str
    latents: _tensor_pb2.Tensor
    top_k: int
    return_singular_values: bool
    return_tile_codes: bool
    label: int
    method: Method
    precision: Precision
    power_iterations: int
    projection_dim: int
    seed: int
    def __init__(self, generator_id: _Optional[str] = ..., latents: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., top_k: _Optional[int] = ..., return_singular_values: _Optional[bool] = ..., return_tile_codes: _Optional[bool] = ..., label: _Optional[int] = ..., method: _Optional[_Union[Method, str]] = ..., precision: _Optional[_Union[Precision, str]] = ..., power_iterations: _Optional[int] = ..., projection_dim: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class ComputeLogVolumesResponse(_message.Message):
    __slots__ = ("offset", "log_volumes", "singular_values", "tile_codes", "errors", "method", "precision", "products")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LOG_VOLUMES_FIELD_NUMBER: _ClassVar[int]
    SINGULAR_VALUES_FIELD_NUMBER: _ClassVar[int]
    TILE_CODES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    offset: int
    log_volumes: _tensor_pb2.Tensor
    singular_values: _tensor_pb2.Tensor
    tile_codes: _tensor_pb2.Tensor
    errors: _tensor_pb2.Tensor
    method: Method
    precision: Precision
    products: int
    def __init__(self, offset: _Optional[int] = ..., log_volumes: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., singular_values: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., tile_codes: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., errors: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., method: _Optional[_Union[Method, str]] = ..., precision: _Optional[_Union[Precision, str]] = ..., products: _Optional[int] = ...) -> None: ...

class ReweightRequest(_message.Message):
    __slots__ = ("generator_id", "latents", "rho", "target", "top_k", "label", "log_proposal")
    GENERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    RHO_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    LOG_PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    generator_id: str
    latents: _tensor_pb2.Tensor
    rho: float
    target: Target
    top_k: int
    label: int
    log_proposal: _tensor_pb2.Tensor
    def __init__(self, generator_id: _Optional[str] = ..., latents: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., rho: _Optional[float] = ..., target: _Optional[_Union[Target, str]] = ..., top_k: _Optional[int] = ..., label: _Optional[int] = ..., log_proposal: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ...) -> None: ...

class ReweightResponse(_message.Message):
    __slots__ = ("chunk", "summary")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    chunk: ReweightChunk
    summary: ReweightSummary
    def __init__(self, chunk: _Optional[_Union[ReweightChunk, _Mapping]] = ..., summary: _Optional[_Union[ReweightSummary, _Mapping]] = ...) -> None: ...

class ReweightChunk(_message.Message):
    __slots__ = ("offset", "log_weights", "log_volumes")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LOG_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    LOG_VOLUMES_FIELD_NUMBER: _ClassVar[int]
    offset: int
    log_weights: _tensor_pb2.Tensor
    log_volumes: _tensor_pb2.Tensor
    def __init__(self, offset: _Optional[int] = ..., log_weights: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., log_volumes: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ...) -> None: ...

class ReweightSummary(_message.Message):
    __slots__ = ("count", "ess", "max_weight")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ESS_FIELD_NUMBER: _ClassVar[int]
    MAX_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    count: int
    ess: float
    max_weight: float
    def __init__(self, count: _Optional[int] = ..., ess: _Optional[float] = ..., max_weight: _Optional[float] = ...) -> None: ...

class ResampleRequest(_message.Message):
    __slots__ = ("generator_id", "n", "rho", "target", "proposals", "oversampling", "scheme", "sampler", "seed", "label", "top_k", "return_outputs", "max_evaluations", "particles", "stream_progress")
    GENERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    RHO_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PROPOSALS_FIELD_NUMBER: _ClassVar[int]
    OVERSAMPLING_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    RETURN_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    MAX_EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    PARTICLES_FIELD_NUMBER: _ClassVar[int]
    STREAM_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    generator_id: str
    n: int
    rho: float
    target: Target
    proposals: int
    oversampling: float
    scheme: Scheme
    sampler: Sampler
    seed: int
    label: int
    top_k: int
    return_outputs: bool
    max_evaluations: int
    particles: int
    stream_progress: bool
    def __init__(self, generator_id: _Optional[str] = ..., n: _Optional[int] = ..., rho: _Optional[float] = ..., target: _Optional[_Union[Target, str]] = ..., proposals: _Optional[int] = ..., oversampling: _Optional[float] = ..., scheme: _Optional[_Union[Scheme, str]] = ..., sampler: _Optional[_Union[Sampler, str]] = ..., seed: _Optional[int] = ..., label: _Optional[int] = ..., top_k: _Optional[int] = ..., return_outputs: _Optional[bool] = ..., max_evaluations: _Optional[int] = ..., particles: _Optional[int] = ..., stream_progress: _Optional[bool] = ...) -> None: ...

class ResampleResponse(_message.Message):
    __slots__ = ("chunk", "summary", "progress")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    chunk: ResampleChunk
    summary: ResampleSummary
    progress: ResampleProgress
    def __init__(self, chunk: _Optional[_Union[ResampleChunk, _Mapping]] = ..., summary: _Optional[_Union[ResampleSummary, _Mapping]] = ..., progress: _Optional[_Union[ResampleProgress, _Mapping]] = ...) -> None: ...

class ResampleProgress(_message.Message):
    __slots__ = ("sampler", "beta", "evaluations", "step", "seconds")
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    BETA_FIELD_NUMBER: _ClassVar[int]
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    sampler: Sampler
    beta: float
    evaluations: int
    step: int
    seconds: float
    def __init__(self, sampler: _Optional[_Union[Sampler, str]] = ..., beta: _Optional[float] = ..., evaluations: _Optional[int] = ..., step: _Optional[int] = ..., seconds: _Optional[float] = ...) -> None: ...

class ResampleChunk(_message.Message):
    __slots__ = ("offset", "latents", "log_weights", "indices", "outputs")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    LOG_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    INDICES_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    offset: int
    latents: _tensor_pb2.Tensor
    log_weights: _tensor_pb2.Tensor
    indices: _tensor_pb2.Tensor
    outputs: _tensor_pb2.Tensor
    def __init__(self, offset: _Optional[int] = ..., latents: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., log_weights: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., indices: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., outputs: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ...) -> None: ...

class ResampleSummary(_message.Message):
    __slots__ = ("n", "proposals", "ess", "max_weight", "distinct", "evaluations", "scheme", "sampler", "seed", "acceptance_rate", "schedule", "ess_history", "acceptance_rates", "log_normalizer", "autocorrelation_ess", "stopped", "beta", "choice", "warnings", "pool_ess")
    N_FIELD_NUMBER: _ClassVar[int]
    PROPOSALS_FIELD_NUMBER: _ClassVar[int]
    ESS_FIELD_NUMBER: _ClassVar[int]
    MAX_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_FIELD_NUMBER: _ClassVar[int]
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ACCEPTANCE_RATE_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    ESS_HISTORY_FIELD_NUMBER: _ClassVar[int]
    ACCEPTANCE_RATES_FIELD_NUMBER: _ClassVar[int]
    LOG_NORMALIZER_FIELD_NUMBER: _ClassVar[int]
    AUTOCORRELATION_ESS_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    BETA_FIELD_NUMBER: _ClassVar[int]
    CHOICE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    POOL_ESS_FIELD_NUMBER: _ClassVar[int]
    n: int
    proposals: int
    ess: float
    max_weight: float
    distinct: int
    evaluations: int
    scheme: Scheme
    sampler: Sampler
    seed: int
    acceptance_rate: float
    schedule: _containers.RepeatedScalarFieldContainer[float]
    ess_history: _containers.RepeatedScalarFieldContainer[float]
    acceptance_rates: _containers.RepeatedScalarFieldContainer[float]
    log_normalizer: float
    autocorrelation_ess: float
    stopped: str
    beta: float
    choice: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    pool_ess: float
    def __init__(self, n: _Optional[int] = ..., proposals: _Optional[int] = ..., ess: _Optional[float] = ..., max_weight: _Optional[float] = ..., distinct: _Optional[int] = ..., evaluations: _Optional[int] = ..., scheme: _Optional[_Union[Scheme, str]] = ..., sampler: _Optional[_Union[Sampler, str]] = ..., seed: _Optional[int] = ..., acceptance_rate: _Optional[float] = ..., schedule: _Optional[_Iterable[float]] = ..., ess_history: _Optional[_Iterable[float]] = ..., acceptance_rates: _Optional[_Iterable[float]] = ..., log_normalizer: _Optional[float] = ..., autocorrelation_ess: _Optional[float] = ..., stopped: _Optional[str] = ..., beta: _Optional[float] = ..., choice: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., pool_ess: _Optional[float] = ...) -> None: ...
