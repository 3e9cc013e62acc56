# The two commands of the README's quick start are `make run` and `make test`.
# Both bootstrap everything they need: a pinned uv in .tools/, then .venv from uv.lock.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Compiled once at install: every CLI start, worker and test subprocess then imports faster.
export UV_COMPILE_BYTECODE := 1

.PHONY: run test lint typecheck check-services venv clean

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The stamp makes repeated runs instant; it is rebuilt whenever the lock changes.
$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

venv: $(VENV)/.synced

## make run: one sync of the example data on the embedded default (settings.toml).
run: venv
	$(VENV)/bin/connector sync

## make test: lint, types, layering, then the whole test suite (PostgreSQL included).
test: venv check-services lint typecheck
	$(VENV)/bin/python -m pytest -n 2 --maxfail=50 $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: venv
	$(VENV)/bin/mypy connector adapters app jobs sandbox tests benchmarks examples

check-services:
	@bash scripts/ensure-services.sh

clean:
	rm -rf $(VENV) .tools var/*.db var/*.json .pytest_cache .mypy_cache .ruff_cache
