# The two commands a newcomer needs: `make up` and `make test`.
# Each sets up everything it needs (venv, packages, Docker, nginx) on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: up test lint typecheck unit bench system venv clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

system:
	@bash scripts/ensure-system.sh

up: venv system
	$(BIN)/railyard up --demo

lint: venv
	$(BIN)/ruff check controller webhook tests
	$(BIN)/ruff format --check controller webhook tests

typecheck: venv
	$(BIN)/mypy

test: venv system lint typecheck
	$(BIN)/pytest -q -ra --durations=15

unit: venv
	$(BIN)/pytest -q tests/unit

bench: venv system
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -qq wrk >/dev/null
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) .railyard .mypy_cache .ruff_cache .pytest_cache
