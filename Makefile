# Two commands do everything: `make run` (the platform) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# JavaScript rendering and screenshots use the system's Chromium (Debian/Ubuntu package "chromium").
CHROMIUM ?= /usr/bin/chromium
# The speed benchmark serves its pages from nginx (Debian/Ubuntu package "nginx-light").
NGINX ?= /usr/sbin/nginx
SUDO   := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo)

.PHONY: run test lint typecheck lock clean browser nginx bench-latency bench-scrape bench-quality bench-speed bench-reads bench-memory bench-recrawl

run: $(VENV)/.run-deps browser
	$(BIN)/python -m gateway serve

test: $(VENV)/.dev-deps browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(VENV)/.dev-deps
	$(BIN)/mypy

# Re-pin every dependency (needs uv: `pip install uv`); commit the lock files.
lock:
	printf 'pip\n' | uv pip compile - --universal --python-version 3.11 --generate-hashes -o requirements-pip.lock
	uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -o requirements.lock
	uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes \
		-c requirements.lock -o requirements-dev.lock

# The lock's pip first: the one a Python ships with may be too old for the lock (pip 23 refuses
# an extra such as justext's lxml[html_clean] in hash-checking mode).
$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-pip.lock

$(VENV)/.run-deps: requirements.lock pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.dev-deps: requirements-dev.lock pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@ $(VENV)/.run-deps

# Chromium from the OS packages (a browser download at run time cannot work everywhere).
browser:
	@test -x $(CHROMIUM) || { \
		echo "Installing Chromium from the OS packages..."; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	}

# The benchmarks serve their pages from nginx, out of the measured processes.
nginx:
	@test -x $(NGINX) || { \
		echo "Installing nginx from the OS packages..."; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light; \
	}

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache

# Benchmarks print figures against a baseline measured in the same run; they are not tests.
bench-latency: $(VENV)/.dev-deps
	$(BIN)/python -m bench.job_latency

bench-scrape: $(VENV)/.dev-deps
	$(BIN)/python -m bench.scrape_latency

bench-quality: $(VENV)/.dev-deps
	$(BIN)/python -m bench.batch_quality

bench-speed: $(VENV)/.dev-deps nginx
	$(BIN)/python -m bench.batch_speed
	$(BIN)/python -m bench.batch_speed --main-content

bench-reads: $(VENV)/.dev-deps nginx
	$(BIN)/python -m bench.read_load

bench-memory: $(VENV)/.dev-deps nginx
	$(BIN)/python -m bench.memory

bench-recrawl: $(VENV)/.dev-deps
	$(BIN)/python -m bench.site_recrawl
