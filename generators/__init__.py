"""Generators: loading and wrapping models (torch modules, TorchScript, diffusers decoders, the built-in zoo).

``load_generator(source)`` takes a built-in id, a spec file or a diffusers folder and returns a :class:`Generator`.
"""

from gendebias._extras import require_extra

require_extra("gendebias.generators", "library")  # before any import that needs the extra

from gendebias.generators.device import resolve_device
from gendebias.generators.generator import Generator, GeneratorInfo
from gendebias.generators.priors import StandardNormal, TruncatedNormal, UniformBall, UniformBox, make_prior
from gendebias.generators.registry import Registry, builtin_registry, load_generator, load_registry
from gendebias.generators.spec import GeneratorSpec, build_generator, parse_spec
from gendebias.generators.toys import Parabola, Ramp, Tent

__all__ = [
    "Generator",
    "GeneratorInfo",
    "GeneratorSpec",
    "Parabola",
    "Ramp",
    "Registry",
    "StandardNormal",
    "Tent",
    "TruncatedNormal",
    "UniformBall",
    "UniformBox",
    "build_generator",
    "builtin_registry",
    "load_generator",
    "load_registry",
    "make_prior",
    "parse_spec",
    "resolve_device",
]
