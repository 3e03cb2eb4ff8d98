from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    ERROR_REASON_INVALID_ARGUMENT: _ClassVar[ErrorReason]
    ERROR_REASON_INVALID_TENSOR: _ClassVar[ErrorReason]
    ERROR_REASON_INVALID_LATENTS: _ClassVar[ErrorReason]
    ERROR_REASON_LIMIT_EXCEEDED: _ClassVar[ErrorReason]
    ERROR_REASON_UNKNOWN_GENERATOR: _ClassVar[ErrorReason]
    ERROR_REASON_GENERATOR_MODE: _ClassVar[ErrorReason]
    ERROR_REASON_GENERATOR_SPEC: _ClassVar[ErrorReason]
    ERROR_REASON_NUMERICAL: _ClassVar[ErrorReason]
    ERROR_REASON_DEGENERATE_WEIGHTS: _ClassVar[ErrorReason]
    ERROR_REASON_QUEUE_FULL: _ClassVar[ErrorReason]
    ERROR_REASON_UNAUTHENTICATED: _ClassVar[ErrorReason]
    ERROR_REASON_UNSUPPORTED: _ClassVar[ErrorReason]
    ERROR_REASON_INTERNAL: _ClassVar[ErrorReason]
    ERROR_REASON_DEVICE_MEMORY: _ClassVar[ErrorReason]
ERROR_REASON_UNSPECIFIED: ErrorReason
ERROR_REASON_INVALID_ARGUMENT: ErrorReason
ERROR_REASON_INVALID_TENSOR: ErrorReason
ERROR_REASON_INVALID_LATENTS: ErrorReason
ERROR_REASON_LIMIT_EXCEEDED: ErrorReason
ERROR_REASON_UNKNOWN_GENERATOR: ErrorReason
ERROR_REASON_GENERATOR_MODE: ErrorReason
ERROR_REASON_GENERATOR_SPEC: ErrorReason
ERROR_REASON_NUMERICAL: ErrorReason
ERROR_REASON_DEGENERATE_WEIGHTS: ErrorReason
ERROR_REASON_QUEUE_FULL: ErrorReason
ERROR_REASON_UNAUTHENTICATED: ErrorReason
ERROR_REASON_UNSUPPORTED: ErrorReason
ERROR_REASON_INTERNAL: ErrorReason
ERROR_REASON_DEVICE_MEMORY: ErrorReason
