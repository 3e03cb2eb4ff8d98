"""Mutation testing of the statistical core: ``make mutation`` (``python tools/mutation.py``); docs/testing.md.

mutmut 3 names a mutant after the module path of its file and activates it by comparing that name with the
``__module__`` of the function it runs, so the mutated files must be imported under their own names. This repository
maps its top-level folders to subpackages (``geometry/`` is ``gendebias.geometry``, pyproject's ``package-dir``),
which mutmut cannot follow. So the run happens on a staged copy in ``build/mutation``: the rooms laid out as the
``src/gendebias`` package they install as (mutmut strips ``src.`` and puts ``mutants/src`` first on ``sys.path``),
the tests, and a pyproject holding only the mutmut and pytest settings of this run. mutmut's per-function test
selection (it records which tests reach each function and runs only those, fastest first, stopping at the first
failure) keeps the run affordable on two cores.

The score of a module is ``killed / (killed + survived)``: a timeout counts as killed, a mutant no selected test
reaches counts as survived, and the equivalent mutants listed in docs/testing.md (matched by function and changed
line, so the list survives renumbering) are left out and printed.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module -> the functions mutated (mutmut's mangled names: ``x_name``, ``xǁClassǁmethod``); ``*`` is all of them.
# Of the batch jobs only the functions that draw the counts and combine the normalising constants are mutated:
# the rest (planning, files, engines) is bookkeeping checked by the slow end-to-end job tests.
MODULES: dict[str, tuple[str, ...]] = {
    "gendebias.geometry.weights": ("*",),
    "gendebias.geometry.resample": ("*",),
    "gendebias.geometry.sir": ("*",),
    "gendebias.geometry.smc": ("*",),
    "gendebias.geometry.mcmc": ("*",),
    "gendebias.geometry.kernels": ("*",),
    "gendebias.geometry.proposals": ("*",),
    "gendebias.geometry.surrogate": ("*",),
    "gendebias.geometry.ess": ("*",),
    "gendebias.geometry.sampling": ("*",),
    "gendebias.jobs.run": ("x__draw", "x__choose"),
    "gendebias.jobs.shards": ("x_shard_seed", "x_proposals", "x_run_shard", "x__smc_shard"),
}

# The test files that exercise those modules. mutmut runs, for each mutant, the tests among these that reach its
# function.
TESTS = (
    "tests/geometry/test_weights.py",
    "tests/geometry/test_balanced.py",
    "tests/geometry/test_resample.py",
    "tests/geometry/test_ess.py",
    "tests/geometry/test_island_ess.py",
    "tests/geometry/test_kernels.py",
    "tests/geometry/test_proposals.py",
    "tests/geometry/test_surrogate.py",
    "tests/geometry/test_delayed_acceptance.py",
    "tests/geometry/test_sir.py",
    "tests/geometry/test_smc.py",
    "tests/geometry/test_mcmc.py",
    "tests/geometry/test_samplers.py",
    "tests/geometry/test_sample_result.py",
    "tests/geometry/test_auto_paths.py",
    "tests/jobs/test_jobs.py",
)

# Tests of more than ~5 s on a 2-core CPU (measured 2026-11-29): end-to-end runs of the jobs (Ray, the CLI, kill -9,
# volume files) and long MCMC runs. Every surviving mutant would pay for all of them; what they check of the mutated
# functions is checked faster by the tests above.
DESELECT = (
    "tests/jobs/test_jobs.py::test_ray_engine_writes_the_same_bytes_as_the_local_engine",
    "tests/jobs/test_jobs.py::test_the_cli_runs_a_batch_job",
    "tests/jobs/test_jobs.py::test_kill_9_and_rerun_gives_byte_identical_outputs",
    "tests/jobs/test_jobs.py::test_volumes_job_matches_the_library",
    "tests/jobs/test_jobs.py::test_other_latent_files_give_the_same_result",
    "tests/jobs/test_jobs.py::test_a_different_job_in_the_same_folder_is_refused_and_nothing_is_overwritten",
    "tests/geometry/test_samplers.py::test_mcmc_on_a_ball_stays_inside_and_matches_the_area_share",
    "tests/geometry/test_samplers.py::test_same_seed_same_latents[mcmc]",
    "tests/geometry/test_samplers.py::test_ramp_area_share_is_matched_and_differs_from_naive[mcmc]",
    "tests/geometry/test_samplers.py::test_default_sampler_is_unbiased_diverse_and_honest_on_the_64_dimensional_hinge",
)

# mutmut's exit codes of a mutant's test run, by what they mean here.
KILLED = {1, 3, -24, -11}  # a test failed, pytest crashed, the CPU limit or a segfault hit the mutant
TIMEOUT = {24, 36, 152, 255}
SURVIVED = {0, 5, 33, 35}  # tests passed, no test reached it, or a suspicious pass
# Two fixes to mutmut 3.3.0 under pytest 9, in a conftest at the root of the staged copy (copied into mutants/ by
# ``also_copy``): it reads ``item._nodeid``, which pytest 9 items no longer have; and it records a test's duration
# as that of its last phase (teardown, ~0 s), so a mutant's time limit, 4 x (its tests' time + 1 s), would be 4 s
# and a mutant whose tests merely take longer would be stopped and counted as killed. The conftest records the
# sum of the phases instead while mutmut collects its stats.
PYTEST_9_SHIM = '''"""Fixes for mutmut 3.3.0 under pytest 9 (written by tools/mutation.py; see there)."""

import os

import pytest

_durations = {}


def pytest_itemcollected(item):
    item._nodeid = item.nodeid


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        import mutmut

        _durations[item.nodeid] = _durations.get(item.nodeid, 0.0) + call.duration
        mutmut.duration_by_test[item.nodeid] = _durations[item.nodeid]
    return report
'''
EQUIVALENTS_DOC = ROOT / "docs" / "testing.md"
THRESHOLD = 85.0
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


@dataclass
class Score:
    """Counts of one module's mutants and its survivors as ``(name, function, change)``."""

    killed: int = 0
    timeout: int = 0
    survived: list[tuple[str, str, str]] = field(default_factory=list)
    equivalent: list[tuple[str, str, str]] = field(default_factory=list)
    unchecked: int = 0

    @property
    def percent(self) -> float:
        caught = self.killed + self.timeout
        total = caught + len(self.survived)
        return 100.0 * caught / total if total else 100.0


def stage(where: Path, modules: list[str]) -> None:
    """Lay out ``where`` as mutmut expects: ``src/gendebias/...``, ``tests/`` and a pyproject with its settings."""
    if where.exists():
        shutil.rmtree(where)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for package, folder in sorted(project["tool"]["setuptools"]["package-dir"].items()):
        shutil.copytree(ROOT / folder, where / "src" / package.replace(".", "/"), ignore=IGNORE, dirs_exist_ok=True)
    settle(where, modules)


def settle(where: Path, modules: list[str]) -> None:
    """Copy the current tests into the stage and write its pyproject (mutmut's and pytest's settings) and
    conftest."""
    shutil.copytree(ROOT / "tests", where / "tests", ignore=IGNORE, dirs_exist_ok=True)
    sources = sorted(path.relative_to(where).as_posix() for path in (where / "src").rglob("*.py"))
    mutated = {f"src/{module.replace('.', '/')}.py" for module in modules}
    missing = mutated - set(sources)
    if missing:
        raise SystemExit(f"mutation: no such module file {sorted(missing)}")
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    # pytest's unraisable-exception plugin runs gc.collect() twice at exit: 1.2 s of the 2 s that each mutant's
    # pytest run would take with torch loaded.
    addopts = ["-q", "--strict-markers", "--import-mode=importlib", "-m", "'not slow and not gpu'",
               "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-p", "no:threadexception",
               *(f"--deselect={test}" for test in DESELECT)]
    settings = {
        "mutmut": {"paths_to_mutate": ["src/"], "also_copy": ["conftest.py"],
                   "do_not_mutate": [s for s in sources if s not in mutated]},
        "pytest": {"ini_options": {**pytest_options, "testpaths": [t for t in TESTS if (ROOT / t).exists()],
                                   "addopts": " ".join(addopts)}},
    }
    (where / "pyproject.toml").write_text(toml({"tool": settings}))
    (where / "conftest.py").write_text(PYTEST_9_SHIM)


def toml(data: dict, prefix: str = "") -> str:
    """The few TOML shapes :func:`stage` writes: tables of strings, booleans and lists of strings."""
    plain = {k: v for k, v in data.items() if not isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and plain else []
    lines += [f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in plain.items()]
    text = "\n".join(lines) + ("\n\n" if lines else "")
    for key, value in data.items():
        if isinstance(value, dict):
            text += toml(value, f"{prefix}.{key}" if prefix else key)
    return text


def patterns(modules: list[str]) -> list[str]:
    return [f"{module}.{function}__mutmut_*" for module in modules for function in MODULES[module]]


def run_mutmut(where: Path, names: list[str], log: Path) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "mutmut", "run", *names], cwd=where, env=env,
                              stdout=out, stderr=subprocess.STDOUT, check=False)
    return done.returncode


def collect(where: Path, *, retest: bool) -> None:
    """Save the exit code of every mutant of the run to ``results.json``; a retest updates the mutants it ran only
    (mutmut 3.3.0 forgets the others' results whenever it runs)."""
    codes: dict[str, int | None] = {}
    for meta in (where / "mutants" / "src").rglob("*.py.meta"):
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    if retest:
        codes = {**results(where), **{name: code for name, code in codes.items() if code is not None}}
    (where / "results.json").write_text(json.dumps(codes, indent=1, sort_keys=True))


def results(where: Path) -> dict[str, int | None]:
    """Exit code of every mutant, by name, as :func:`collect` saved them."""
    return json.loads((where / "results.json").read_text())


def survivors(where: Path, modules: list[str]) -> list[str]:
    """Names of the mutants of ``modules`` that survived the last run, to test again after adding tests."""
    wanted = patterns(modules)
    return sorted(name for name, code in results(where).items()
                  if code in SURVIVED and any(fnmatch.fnmatch(name, p) for p in wanted))


def function_of(name: str) -> str:
    """``TemperedTarget.affordable`` or ``sample`` from a mutant name."""
    mangled = name.partition("__mutmut_")[0].rpartition(".")[2]
    if mangled.startswith("xǁ"):
        return mangled[2:].replace("ǁ", ".")
    return mangled[2:]


def change(where: Path, name: str) -> str:
    """The mutant's changed lines, ``removed → added`` (stripped, several joined by `` / ``)."""
    module = name.partition("__mutmut_")[0].rpartition(".")[0]
    source = (where / "mutants" / "src" / (module.replace(".", "/") + ".py")).read_text()
    mangled = name.rpartition(".")[2]
    original = function_source(source, mangled.partition("__mutmut_")[0] + "__mutmut_orig")
    mutant = function_source(source, mangled)
    removed, added = [], []
    original = original.replace(mangled.partition("__mutmut_")[0] + "__mutmut_orig", "f", 1)
    mutant = mutant.replace(mangled, "f", 1)
    for line in difflib.ndiff(original.splitlines(), mutant.splitlines()):
        if not line[2:].strip():
            continue
        if line.startswith("- "):
            removed.append(" ".join(line[2:].split()))
        elif line.startswith("+ "):
            added.append(" ".join(line[2:].split()))
    return f"{' / '.join(removed)} → {' / '.join(added)}"


def function_source(source: str, name: str) -> str:
    """The text of ``def name`` (top level or a method) in ``source``: its lines up to the next line as indented."""
    lines = source.splitlines()
    for start, line in enumerate(lines):
        if re.match(rf"\s*def {re.escape(name)}\(", line):
            indent = len(line) - len(line.lstrip())
            end = start + 1
            while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
                                        or lines[end].lstrip().startswith((")", "]", "}"))):
                end += 1
            return "\n".join(lines[start:end])
    raise LookupError(f"mutation: no function {name} in the mutated source")


def equivalents(document: Path = EQUIVALENTS_DOC) -> set[tuple[str, str, str]]:
    """``(module, function, change)`` of every row of the "Equivalent mutants" table in docs/testing.md."""
    found: set[tuple[str, str, str]] = set()
    inside = False
    if not document.exists():
        return found
    for line in document.read_text().splitlines():
        if line.startswith("#"):
            inside = line.strip("# ").lower().startswith("equivalent mutants")
            continue
        if not inside or not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) < 4 or cells[0].lower() == "module":
            continue
        module, function, mutation = (cell.strip("`") for cell in cells[:3])
        removed, _, added = mutation.partition("` → `")
        found.add((module, function, f"{removed.strip('`')} → {added.strip('`')}"))
    return found


def score(where: Path, modules: list[str]) -> dict[str, Score]:
    known = equivalents()
    scores = {module: Score() for module in modules}
    for name, code in sorted(results(where).items()):
        module = name.partition("__mutmut_")[0].rpartition(".")[0]
        mangled = name.partition("__mutmut_")[0].rpartition(".")[2]
        if module not in scores or not any(fnmatch.fnmatch(mangled, f) for f in MODULES[module]):
            continue
        tally = scores[module]
        if code in KILLED:
            tally.killed += 1
        elif code in TIMEOUT:
            tally.timeout += 1
        elif code in SURVIVED:
            entry = (name, function_of(name), change(where, name))
            (tally.equivalent if (module, entry[1], entry[2]) in known else tally.survived).append(entry)
        else:
            tally.unchecked += 1
    return scores


def report(scores: dict[str, Score], seconds: float | None) -> str:
    rows = ["| module | killed | timeout | survived | equivalent | score |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for module, s in scores.items():
        rows.append(f"| `{module}` | {s.killed} | {s.timeout} | {len(s.survived)} | {len(s.equivalent)} | "
                    f"{s.percent:.1f}% |")
    text = "\n".join(rows) + "\n"
    if seconds is not None:
        text += f"\nmutmut run: {seconds / 60:.1f} min wall\n"
    for title, attribute in (("Survivors", "survived"), ("Equivalent (docs/testing.md)", "equivalent")):
        entries = [(m, e) for m, s in scores.items() for e in getattr(s, attribute)]
        if entries:
            text += f"\n{title}:\n" + "".join(f"  {name}  [{func}]  {what}\n" for _, (name, func, what) in entries)
    unchecked = sum(s.unchecked for s in scores.values())
    if unchecked:
        text += f"\n{unchecked} mutants were not checked (the run stopped early?)\n"
    return text


def check_mutmut() -> None:
    """The installed mutmut must be the version pinned in the ``mutation`` extra: the stage relies on its quirks."""
    from importlib.metadata import PackageNotFoundError, version

    pin = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["mutation"][0]
    try:
        installed = version("mutmut")
    except PackageNotFoundError:
        installed = "none"
    if pin != f"mutmut=={installed}":
        raise SystemExit(f"mutation: needs {pin} (installed: {installed}); run make mutation, or pip install '{pin}'")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all of MODULES), e.g. "
                        "gendebias.geometry.weights")
    parser.add_argument("--stage", type=Path, default=ROOT / "build" / "mutation", help="where to run")
    parser.add_argument("--score-only", action="store_true", help="report the last run's results again")
    parser.add_argument("--retest", action="store_true", help="run the last run's survivors again against the "
                        "current tests (after adding tests that should kill them)")
    parser.add_argument("--fail-under", type=float, default=THRESHOLD, help="score (%%) each module must reach")
    options = parser.parse_args()
    modules = options.modules or list(MODULES)
    unknown = sorted(set(modules) - set(MODULES))
    if unknown:
        parser.error(f"not a mutated module: {unknown}; choose from {list(MODULES)}")
    seconds = None
    if not options.score_only:
        check_mutmut()
        if options.retest:
            if not (options.stage / "results.json").exists():
                collect(options.stage, retest=False)
            names = survivors(options.stage, modules)
            settle(options.stage, modules)
            # mutmut 3.3.0 re-collects the stats of new tests only, and that pytest run finds none (exit 5): start
            # the stats afresh, so every test is mapped to the functions it reaches again
            (options.stage / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        else:
            names = patterns(modules)
            stage(options.stage, modules)
        start = time.monotonic()
        code = run_mutmut(options.stage, names, options.stage / "mutmut.log") if names else 0
        seconds = time.monotonic() - start
        if code != 0:
            print((options.stage / "mutmut.log").read_text()[-4000:])
            print(f"mutation: mutmut exited {code}; its log is {options.stage / 'mutmut.log'}")
            return code
        collect(options.stage, retest=options.retest)
    elif not (options.stage / "results.json").exists():
        collect(options.stage, retest=False)
    scores = score(options.stage, modules)
    text = report(scores, seconds)
    (options.stage / "report.md").write_text(text)
    print(text)
    low = [module for module, s in scores.items() if s.percent < options.fail_under or s.unchecked]
    if low:
        print(f"mutation: under {options.fail_under:g}% (or unchecked): {low}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
