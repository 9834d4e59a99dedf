# Every target creates the virtual environment it needs (Python 3.11+ as `python3`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo serve test lint fmt clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
