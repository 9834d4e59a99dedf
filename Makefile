# Every target creates the virtual environment it needs (Python 3.11+ as `python3`), with only
# the packages it needs: the runtime for run/serve, the test extras for test, the dev tools for
# lint. `make` alone lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

# The interpreter the venv is made with: its version and a hash of its path. A venv made by
# another Python gets another stamp name, so it is rebuilt instead of staying broken.
PY_TAG := $(shell $(PYTHON) -c 'import hashlib, os, sys; print("%d.%d.%d-%s" % (*sys.version_info[:3], hashlib.sha256(os.path.realpath(sys.executable).encode()).hexdigest()[:10]))' 2>/dev/null)
VENV_STAMP := $(VENV)/.python-$(PY_TAG)
RUNTIME := $(VENV)/.runtime
TESTS := $(VENV)/.tests
STAMP := $(VENV)/.installed
# The providers' official SDKs, for the SDK contract tests (tests/sdk/): never the project's deps.
SDK_VENV := .sdk/python
SDK_STAMP := $(SDK_VENV)/.installed
SDK_NODE := tests/sdk/trigger tests/sdk/together
SDK_NODE_STAMP := $(SDK_NODE:%=%/node_modules/.installed)

.DEFAULT_GOAL := help
.PHONY: help run demo serve check-config once diagnose test lint fmt clean bench sdk _config

help: ## this list
	@echo "usage: make TARGET [ARGS=...]   (each target builds the $(VENV) it needs on first use)"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z -]*:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV_STAMP):
	@test -n "$(PY_TAG)" || { echo "make: $(PYTHON) was not found: install Python 3.11+ or pass PYTHON=/path/to/python3.11" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "make: $(PYTHON) is Python $(firstword $(subst -, ,$(PY_TAG))): session-exporter needs 3.11+ (pass PYTHON=python3.11)" >&2; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	touch $@

sdk: $(SDK_STAMP) $(SDK_NODE_STAMP) ## the official SDKs the SDK contract tests drive

$(SDK_STAMP): tests/sdk/requirements.txt
	rm -rf $(SDK_VENV)
	$(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r $<
	$(SDK_VENV)/bin/python -m pip check
	touch $@

tests/sdk/%/node_modules/.installed: tests/sdk/%/package.json tests/sdk/%/package-lock.json
	npm ci --prefix tests/sdk/$* --no-audit --no-fund
	touch $@

$(RUNTIME): $(VENV_STAMP) pyproject.toml
	$(PIP) -e .
	touch $@

$(TESTS): $(VENV_STAMP) pyproject.toml
	$(PIP) -e '.[test]'
	touch $@

$(STAMP): $(VENV_STAMP) pyproject.toml
	$(PIP) -e '.[dev]'
	touch $@

run demo: $(RUNTIME) ## the demo: five simulated providers, the exporter on http://127.0.0.1:9864/
	$(BIN)/session-exporter demo $(ARGS)

serve: _config $(RUNTIME) ## the exporter on a real config: make serve CONFIG=config.yaml
	$(BIN)/session-exporter serve --config $(CONFIG) $(ARGS)

# The other commands on a config; not echoed, so stdout is the command's own (the exposition
# of once, the JSON of diagnose --json). ARGS are the command's: ARGS="--target prod --json".
check-config: _config $(RUNTIME) ## validate a config: make check-config CONFIG=config.yaml
	@$(BIN)/session-exporter check-config --config $(CONFIG) $(ARGS)

once: _config $(RUNTIME) ## poll once and print the metrics: make once CONFIG=config.yaml
	@$(BIN)/session-exporter once --config $(CONFIG) $(ARGS)

diagnose: _config $(RUNTIME) ## what a real account sends: make diagnose CONFIG=c.yaml ARGS="--target t"
	@$(BIN)/session-exporter diagnose --config $(CONFIG) $(ARGS)

COMMAND = $(or $(filter serve check-config once diagnose,$(MAKECMDGOALS)),serve)
_config:
	@test -n "$(CONFIG)" || { echo "make $(firstword $(COMMAND)) needs a config file: make $(firstword $(COMMAND)) CONFIG=config.yaml (how to write one: docs/configuration.md; no config yet? try make run)" >&2; exit 2; }

test: $(TESTS) ## the test suite (ARGS are pytest's: ARGS="tests/test_cli.py -q")
	$(BIN)/pytest $(ARGS)

bench: $(RUNTIME) ## the benchmark: goals table and growth figures (ARGS=--quick for a smoke run)
	$(BIN)/python -m bench $(ARGS)

lint: $(STAMP) ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP) ## reformat and fix what ruff can
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## remove the venvs, the SDK environments and the caches
	rm -rf $(VENV) .sdk $(SDK_NODE:%=%/node_modules) .pytest_cache .mypy_cache .ruff_cache *.egg-info
