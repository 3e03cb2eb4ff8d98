"""The SDK is light: a plain ``pip install`` (no extras) brings no torch, and its ``Client`` calls a real server.

The install test copies the checkout, ``pip install``s the copy into a fresh virtual environment (dependencies from
the package index), and runs the SDK and the CLI's remote commands there against a server of this test environment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "pyarrow", "safetensors")
LIGHT_MODULES = ("gendebias", "gendebias.v1", "gendebias.wire", "gendebias.clients", "gendebias.cli.main")
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
                                    "demo", "READY")


def test_the_sdk_and_the_cli_import_no_heavy_module():
    """Checked here, where torch is installed, so that an import of it anywhere on the SDK's path shows up."""
    code = (f"import importlib, sys\nfor name in {LIGHT_MODULES!r}:\n    importlib.import_module(name)\n"
            f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert loaded.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def light_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The Python of a fresh virtual environment holding ``pip install <copy of the checkout>`` and nothing else."""
    folder = tmp_path_factory.mktemp("light-install")
    source = folder / "gendebias"
    shutil.copytree(ROOT, source, ignore=NOT_COPIED)
    environment = folder / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                str(source)], capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, f"pip install failed:\n{installed.stdout}\n{installed.stderr}"
    yield python


def run_in(python: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in the light environment, from its own folder (the checkout's ``gendebias/`` would shadow the
    installed package if the working directory were the repository)."""
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=python.parents[1])


def test_a_plain_install_has_no_torch_pyarrow_or_safetensors(light_python):
    code = (f"import importlib.metadata as m, importlib.util as u\n"
            f"present = []\nfor name in {HEAVY!r}:\n"
            f"    try:\n        m.distribution(name)\n        present.append(name)\n"
            f"    except m.PackageNotFoundError:\n        pass\n"
            f"    if u.find_spec(name) is not None:\n        present.append(name)\n"
            f"print(sorted(set(present)))")
    checked = run_in(light_python, code)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "[]"


def test_the_light_client_lists_and_checks_a_real_server(light_python, target):
    code = ("import json, sys\nfrom gendebias.clients import Client\n"
            f"with Client({target!r}) as client:\n"
            "    ids = [info.generator_id for info in client.list_generators()]\n"
            "    health = client.health()\n"
            "print(json.dumps({'ids': ids, 'health': health, 'torch': 'torch' in sys.modules}))")
    called = run_in(light_python, code)
    assert called.returncode == 0, called.stderr
    answer = json.loads(called.stdout)
    assert answer == {"ids": ["digits-gan", "digits-vae", "parabola", "ramp", "tent"], "health": "SERVING",
                      "torch": False}


def test_the_light_cli_calls_a_server_and_names_the_extra_it_lacks(light_python, target, tmp_path):
    command = light_python.parent / "gendebias"
    listed = subprocess.run([str(command), "generators", "--target", target, "--format", "json"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["generators"]) == 5
    latents = tmp_path / "z.npy"
    run_in(light_python, f"import numpy as np; np.save({str(latents)!r}, np.zeros((2, 2)))").check_returncode()
    local = subprocess.run([str(command), "volumes", "ramp", "--latents", str(latents), "--local"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert local.returncode == 1
    assert "pip install 'gendebias[library]'" in local.stderr and "Traceback" not in local.stderr


@pytest.mark.parametrize(("module", "extra"), [("gendebias.geometry", "library"), ("gendebias.generators", "library"),
                                               ("gendebias.service", "server"), ("gendebias.jobs", "jobs")])
def test_a_room_imported_without_its_extra_names_it(light_python, module, extra):
    imported = run_in(light_python, f"import {module}")
    assert imported.returncode == 1
    assert f"MissingExtraError: {module} needs the '{extra}' extra" in imported.stderr
    assert f"pip install 'gendebias[{extra}]'" in imported.stderr
