"""The mutation harness (``tools/mutation.py``): how it reads mutmut's output and the equivalent-mutant table, on
made-up inputs, without running mutmut."""

import json
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import mutation

MUTATED = '''
def x_tilted__mutmut_orig(log_volumes, rho=1.0):
    if rho == 0:
        return zeros(log_volumes)
    return rho * log_volumes

def x_tilted__mutmut_3(log_volumes, rho=1.0):
    if rho == 0:
        return zeros(log_volumes)
    return rho / log_volumes

def x_tilted__mutmut_4(log_volumes, rho=2.0):
    if rho == 0:
        return zeros(log_volumes)
    return rho * log_volumes
'''


def test_a_mutants_change_is_its_changed_lines_even_on_the_def_line(tmp_path):
    module = tmp_path / "mutants" / "src" / "gendebias" / "geometry"
    module.mkdir(parents=True)
    (module / "weights.py").write_text(MUTATED)
    assert mutation.change(tmp_path, "gendebias.geometry.weights.x_tilted__mutmut_3") == \
        "return rho * log_volumes → return rho / log_volumes"
    assert mutation.change(tmp_path, "gendebias.geometry.weights.x_tilted__mutmut_4") == \
        "def f(log_volumes, rho=1.0): → def f(log_volumes, rho=2.0):"


def test_function_names_of_functions_and_methods():
    assert mutation.function_of("gendebias.geometry.weights.x__normalise__mutmut_7") == "_normalise"
    assert mutation.function_of("gendebias.geometry.kernels.xǁTemperedTargetǁaffordable__mutmut_2") == \
        "TemperedTarget.affordable"


def test_the_equivalent_table_is_read_with_escaped_pipes(tmp_path):
    document = tmp_path / "testing.md"
    document.write_text("# T\n\n### Equivalent mutants\n\n| module | function | mutation | why |\n"
                        "| --- | --- | --- | --- |\n"
                        "| `m.a` | `f` | `x = a \\| b` → `x = a & b` | both are bools here |\n\n## Next\n\n"
                        "| `m.b` | `g` | `y` → `z` | not in the section |\n")
    assert mutation.equivalents(document) == {("m.a", "f", "x = a | b → x = a & b")}


def test_every_equivalent_listed_in_the_docs_names_a_mutated_module():
    listed = mutation.equivalents()
    assert listed and {module for module, _, _ in listed} <= set(mutation.MODULES)


def test_scores_count_timeouts_as_killed_and_leave_listed_equivalents_out(tmp_path, monkeypatch):
    module = tmp_path / "mutants" / "src" / "gendebias" / "geometry"
    module.mkdir(parents=True)
    (module / "weights.py").write_text(MUTATED)
    codes = {"gendebias.geometry.weights.x_tilted__mutmut_1": 1, "gendebias.geometry.weights.x_tilted__mutmut_2": 24,
             "gendebias.geometry.weights.x_tilted__mutmut_3": 0, "gendebias.geometry.weights.x_tilted__mutmut_4": 0}
    (tmp_path / "results.json").write_text(json.dumps(codes))
    monkeypatch.setattr(mutation, "equivalents", lambda: {
        ("gendebias.geometry.weights", "tilted", "def f(log_volumes, rho=1.0): → def f(log_volumes, rho=2.0):")})
    score = mutation.score(tmp_path, ["gendebias.geometry.weights"])["gendebias.geometry.weights"]
    assert (score.killed, score.timeout, len(score.survived), len(score.equivalent)) == (1, 1, 1, 1)
    assert score.percent == 200 / 3
    assert mutation.survivors(tmp_path, ["gendebias.geometry.weights"]) == [
        "gendebias.geometry.weights.x_tilted__mutmut_3", "gendebias.geometry.weights.x_tilted__mutmut_4"]


def test_the_staged_settings_are_valid_toml():
    settings = {"tool": {"mutmut": {"paths_to_mutate": ["src/"], "debug": False},
                         "pytest": {"ini_options": {"addopts": "-m 'not slow'", "testpaths": ["tests/a.py"]}}}}
    assert tomllib.loads(mutation.toml(settings)) == settings


def test_the_pinned_mutmut_is_the_one_the_makefile_installs():
    root = Path(__file__).resolve().parents[2]
    pin = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["mutation"]
    assert pin == ["mutmut==3.3.0"] and "MUTMUT := mutmut==3.3.0" in (root / "Makefile").read_text()
