# `make demo` and `make test` work on a fresh machine: they create .venv and install the
# pinned dependencies (torch==2.13.0 CPU build) first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps demo serve-demo test test-fast typecheck lint docs clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

system-deps:
	bash scripts/system-deps.sh

demo: setup
	$(BIN)/python -m lookalike.demo

# The web page and REST API on the demo library (builds it first if `make demo` has not run).
PORT ?= 8000
serve-demo: setup
	test -f demo-library/library.sqlite || $(BIN)/python -m lookalike.demo
	$(BIN)/lookalike serve --library demo-library --host 127.0.0.1 --port $(PORT)

# Everything CI runs: lint, types, docs, then all three test tiers (tests/unit,
# tests/integration, tests/e2e; see CONTRIBUTING.md).
test: setup system-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict --quiet --site-dir $$(mktemp -d)
	$(BIN)/python -m pytest -q

# The quick tier while editing: lint and tests/unit (no model, no server).
test-fast: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q tests/unit

# Static type check of src/ (configured in pyproject.toml [tool.mypy]).
typecheck: setup
	$(BIN)/mypy

# The documentation site (MkDocs, offline) into site/.
docs: setup
	$(BIN)/mkdocs build --strict

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) demo-gallery demo-library .pytest_cache site
