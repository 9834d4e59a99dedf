# Every target creates the virtual environment it needs (Python 3.11+ as `python3`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The providers' official SDKs, for the SDK contract tests (tests/sdk/): never the project's deps.
SDK_VENV := .sdk/python
SDK_STAMP := $(SDK_VENV)/.installed
SDK_NODE := tests/sdk/trigger
SDK_NODE_STAMP := $(SDK_NODE)/node_modules/.installed

.PHONY: run demo serve test lint fmt clean bench sdk

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

sdk: $(SDK_STAMP) $(SDK_NODE_STAMP) ## the official SDKs the SDK contract tests drive

$(SDK_STAMP): tests/sdk/requirements.txt
	rm -rf $(SDK_VENV)
	$(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r $<
	$(SDK_VENV)/bin/python -m pip check
	touch $@

$(SDK_NODE_STAMP): $(SDK_NODE)/package.json $(SDK_NODE)/package-lock.json
	npm ci --prefix $(SDK_NODE) --no-audit --no-fund
	touch $@

run demo: $(STAMP) ## the exporter over five simulated providers on :9864
	$(BIN)/session-exporter demo $(ARGS)

serve: $(STAMP) ## the exporter on a real config: make serve CONFIG=config.yaml
	$(BIN)/session-exporter serve --config $(CONFIG) $(ARGS)

test: $(STAMP) ## the test suite
	$(BIN)/pytest $(ARGS)

bench: $(STAMP) ## the benchmark: goals table and growth figures (ARGS=--quick for a smoke run)
	$(BIN)/python -m bench $(ARGS)

lint: $(STAMP) ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .sdk $(SDK_NODE)/node_modules .pytest_cache .mypy_cache .ruff_cache *.egg-info
