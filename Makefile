# The README names two commands: `make demo` (the main job) and `make test` (the tests).
# Both create their own virtualenv in .venv.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint typecheck unit bench fuzz accel accel-clean clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/replaygate demo $(DEMO_ARGS)

LINT_DIRS := $(wildcard src tests bench examples)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck unit

# Optional: the capture hot path compiled with mypyc and the pseudonym kernels of masking in C
# (needs gcc and Python.h). The pure-Python modules stay and are used whenever the compiled
# ones are missing or older than the sources.
accel: $(STAMP)
	REPLAYGATE_COMPILE=1 $(BIN)/python setup.py -q build_ext --inplace
	$(BIN)/python -c 'from replaygate.protocol._accel import write_manifest; write_manifest()'

accel-clean:
	rm -f src/replaygate/protocol/*.so src/replaygate/protocol/_accel_manifest.json
	rm -f src/replaygate/stages/*.so

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz $(FUZZ_ARGS)

clean: accel-clean
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build
