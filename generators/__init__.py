"""Generators: loading and wrapping models (torch modules, TorchScript, diffusers decoders, the built-in zoo)."""

from gendebias.generators.toys import Ramp

__all__ = ["Ramp"]
