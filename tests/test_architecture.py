"""Imports point inward (``docs/design.md#rooms-and-imports``), checked on the source of every room.

import-linter cannot follow this repository's layout (each top-level folder is mapped to a subpackage with
setuptools ``package-dir``, and grimp only walks the root package's own folder), so the contracts are checked here
from the syntax tree of each module: an import anywhere in a file, including inside a function, counts.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CONTRACTS = {
    "geometry": {"gendebias.generators", "gendebias.service", "gendebias.clients", "gendebias.jobs",
                 "gendebias.cli", "gendebias.evaluation", "grpc", "google.protobuf", "os", "pathlib",
                 "logging.config", "io"},
    "generators": {"gendebias.service", "gendebias.clients", "gendebias.jobs", "gendebias.cli",
                   "gendebias.evaluation", "grpc", "google.protobuf"},
    "clients": {"torch", "gendebias.geometry", "gendebias.generators", "gendebias.service", "gendebias.cli",
                "gendebias.evaluation"},
    "service": {"gendebias.clients", "gendebias.cli", "gendebias.jobs"},
    "jobs": {"gendebias.service", "gendebias.clients", "gendebias.cli", "grpc", "google.protobuf"},
    "evaluation": {"gendebias.service", "gendebias.clients", "gendebias.jobs", "gendebias.cli", "grpc",
                   "google.protobuf"},
}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def forbidden_imports(room: str, root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted((root / room).rglob("*.py")):
        for name in sorted(imported_modules(path)):
            if any(name == banned or name.startswith(banned + ".") for banned in CONTRACTS[room]):
                found.append(f"{path.relative_to(root)} imports {name}")
    return found


@pytest.mark.parametrize("room", [room for room in CONTRACTS if (ROOT / room).is_dir()])
def test_room_imports_point_inward(room):
    assert forbidden_imports(room) == []


def test_the_checker_catches_a_forbidden_import(tmp_path):
    (tmp_path / "geometry").mkdir()
    (tmp_path / "geometry" / "bad.py").write_text("def f():\n    import grpc.aio\n    from os import environ\n")
    assert forbidden_imports("geometry", tmp_path) == ["geometry/bad.py imports grpc.aio", "geometry/bad.py imports os"]
