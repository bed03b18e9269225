# Two commands do everything: `make run` (the platform) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint typecheck lock clean bench-latency bench-quality bench-speed

run: $(VENV)/.run-deps
	$(BIN)/python -m gateway serve

test: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(VENV)/.dev-deps
	$(BIN)/mypy

# Re-pin every dependency (needs uv: `pip install uv`); commit both lock files.
lock:
	uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -o requirements.lock
	uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes \
		-c requirements.lock -o requirements-dev.lock

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-deps: requirements.lock pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.dev-deps: requirements-dev.lock pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@ $(VENV)/.run-deps

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache

# Benchmarks print figures against a baseline measured in the same run; they are not tests.
bench-latency: $(VENV)/.dev-deps
	$(BIN)/python -m bench.job_latency

bench-quality: $(VENV)/.dev-deps
	$(BIN)/python -m bench.batch_quality

bench-speed: $(VENV)/.dev-deps
	$(BIN)/python -m bench.batch_speed
	$(BIN)/python -m bench.batch_speed --main-content
