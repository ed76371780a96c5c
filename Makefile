# splash_core front door. Needs only python3 (>= 3.11) with pip and venv, and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.synced

.PHONY: demo test lint typecheck imports unit bench bench-full live clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(STAMP): $(BIN)/uv pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --locked --inexact --quiet
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/splash demo

test: $(STAMP)
	$(BIN)/ruff check src tests bench noxfile.py
	$(BIN)/ruff format --check src tests bench noxfile.py
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest --cov --cov-report=term --cov-report=xml -m "not live"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench noxfile.py
	$(BIN)/ruff format --check src tests bench noxfile.py

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

bench: $(STAMP)
	$(BIN)/python -m bench --mode full

bench-quick: $(STAMP)
	$(BIN)/python -m bench --mode quick

live: $(STAMP)
	$(BIN)/pytest -m live -rs

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage coverage.xml splash-demo
