"""The one exception hierarchy of gendebias (STYLE.md rule 5).

Every class subclasses :class:`GendebiasError` and the builtin it behaves like, so callers that catch
``ValueError`` keep working. The service maps each class to one gRPC status and ``ErrorReason``; the SDK
maps it back.
"""


class GendebiasError(Exception):
    """Base class of every error gendebias raises on purpose."""


class InvalidArgumentError(GendebiasError, ValueError):
    """An argument has the wrong shape, dtype, value or device; the message says how to fix the call."""


class GeneratorModeError(GendebiasError, ValueError):
    """The generator is in a state the maths cannot use (e.g. batch norm in training mode)."""


class NumericalError(GendebiasError, ArithmeticError):
    """The generator produced non-finite outputs or Jacobians for some latents."""


class DegenerateWeightsError(GendebiasError, ValueError):
    """No latent carries positive weight, or the weights cannot be normalised."""


class UnknownGeneratorError(GendebiasError, LookupError):
    """No generator is registered under the requested id, or a source path does not exist."""


class GeneratorSpecError(GendebiasError, ValueError):
    """A generator spec is malformed or its files (factory, weights, TorchScript, diffusers folder) do not load."""
