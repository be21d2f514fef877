# Set-up and day-to-day commands. Everything runs inside .venv, created on first use.
#   make demo    install (if needed) and run the demo
#   make test    install (if needed), prepare test services, then lint, type-check and test
#   make serve   run the HTTP API
#   make bench   the benchmarks: ingest, profile reads, identity matching, MQTT (see docs/benchmarks.md)
#   make clean   remove the virtualenv, SQLite databases and test output

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install demo test serve bench clean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when pyproject.toml changes (or the stamp is missing).
$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/rapport demo

test: $(INSTALLED)
	scripts/test-services
	scripts/test-browser
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: $(INSTALLED)
	$(BIN)/rapport serve

bench: $(INSTALLED)
	$(BIN)/rapport bench ingest --events 200000
	$(BIN)/rapport bench profile
	$(BIN)/rapport bench identity --profiles 1000000
	$(BIN)/rapport bench mqtt --messages 200000

clean:
	rm -rf $(VENV) test-output
	rm -f -- *.db *.db-wal *.db-shm
