"""Finding generators: the built-in zoo, registry files, and ``load_generator``.

A registry file is TOML with one ``[generators.<id>]`` table per generator (keys in :mod:`.spec`); the built-in
zoo is ``zoo/registry.toml``, shipped with the package, and is the default of the service and the jobs.
Generators are built lazily, on first use, and kept.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from gendebias.errors import GeneratorSpecError, UnknownGeneratorError
from gendebias.generators.diffusers_decoder import diffusers_class_name
from gendebias.generators.generator import Generator
from gendebias.generators.spec import GeneratorSpec, build_generator, parse_spec

BUILTIN_REGISTRY = Path(__file__).resolve().parent / "zoo" / "registry.toml"


class Registry(Mapping[str, Generator]):
    """Generators by id, built on first access. ``registry["digits-gan"]`` -> ``Generator``."""

    def __init__(self, specs: Mapping[str, GeneratorSpec]) -> None:
        self.specs = dict(specs)
        self._built: dict[str, Generator] = {}

    @classmethod
    def from_file(cls, path: str | Path) -> Registry:
        path = Path(path)
        data = _read_toml(path)
        tables = data.get("generators")
        if not isinstance(tables, dict) or not tables:
            raise GeneratorSpecError(f"{path} has no [generators.<id>] tables; a registry lists at least one")
        return cls({id: parse_spec(table, id=id, base=path.parent) for id, table in tables.items()})

    def __getitem__(self, id: str) -> Generator:
        if id not in self.specs:
            raise UnknownGeneratorError(f"unknown generator {id!r}; known generators: {sorted(self.specs)}")
        if id not in self._built:
            self._built[id] = build_generator(self.specs[id])
        return self._built[id]

    def __contains__(self, id: object) -> bool:
        return id in self.specs

    def __iter__(self) -> Iterator[str]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)


def builtin_registry() -> Registry:
    """The built-in zoo: digits generators trained on scikit-learn's digits, and analytic toys."""
    return Registry.from_file(BUILTIN_REGISTRY)


def load_registry(path: str | Path | None = None) -> Registry:
    """The registry in ``path``, or the built-in zoo when None."""
    return builtin_registry() if path is None else Registry.from_file(path)


def load_generator(source: str | Path | Mapping[str, Any]) -> Generator:
    """A ``Generator`` from a built-in id (``"digits-gan"``), a spec file (``.toml``), a diffusers model folder
    (``save_pretrained`` output with an ``AutoencoderKL`` or ``VQModel``), or a spec given as a mapping."""
    if isinstance(source, Mapping):
        return build_generator(parse_spec(source, id=str(source.get("id", "generator")), base=Path.cwd()))
    builtin = builtin_registry()
    if isinstance(source, str) and source in builtin:
        return builtin[source]
    path = Path(source)
    if path.is_dir() and diffusers_class_name(path) is not None:
        return build_generator(parse_spec({"source": "diffusers", "path": str(path)}, id=path.name, base=path))
    if path.is_file() and path.suffix == ".toml":
        return _from_spec_file(path)
    if path.exists():
        raise GeneratorSpecError(
            f"{path} is neither a spec file (.toml) nor a diffusers model folder (config.json with _class_name); "
            "for a TorchScript file or a torch module, write a spec with source, path/factory and latent_shape"
        )
    raise UnknownGeneratorError(
        f"{str(source)!r} is not a built-in generator ({sorted(builtin)}) and no such file or folder exists"
    )


def _from_spec_file(path: Path) -> Generator:
    data = _read_toml(path)
    if "generators" in data:
        tables = data["generators"]
        if isinstance(tables, dict) and len(tables) == 1:
            (id, table), = tables.items()
            return build_generator(parse_spec(table, id=id, base=path.parent))
        raise GeneratorSpecError(f"{path} is a registry of {len(tables)} generators; "
                                 "use load_registry(path)[id] to pick one")
    return build_generator(parse_spec(data, id=path.stem, base=path.parent))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UnknownGeneratorError(f"no such file: {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise GeneratorSpecError(f"{path} is not valid TOML: {error}") from None
