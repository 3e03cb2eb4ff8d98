"""The SDK never imports torch: ``import gendebias.clients`` (and ``gendebias``, ``gendebias.v1``) in a fresh
interpreter leaves ``torch`` out of ``sys.modules``, so a client machine needs neither torch nor its start-up."""

import subprocess
import sys

import pytest

SDK_IMPORTS = ["gendebias", "gendebias.v1", "gendebias.clients",
               "from gendebias.clients import AsyncClient, Client", "from gendebias import wire"]


def run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("statement", SDK_IMPORTS)
def test_the_sdk_never_imports_torch(statement):
    statement = statement if statement.startswith("from ") else f"import {statement}"
    loaded = run(f"import sys\n{statement}\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    assert loaded.returncode == 0, loaded.stderr
    if loaded.stdout.strip() != "[]":
        # import again with torch blocked: the traceback names the module that pulled it in
        blocked = run(f"import sys\nsys.modules['torch'] = None\n{statement}")
        pytest.fail(f"{statement!r} imports torch; the import chain:\n{blocked.stderr}")
