# Agora. `make run` serves the embedded default on http://127.0.0.1:8000;
# `make test` runs the checks and the whole test suite against the local PostgreSQL.
SHELL := /bin/bash
PY := .venv/bin/python
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck pytest bench setup

setup:
	scripts/bootstrap.sh run

run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py collectstatic --noinput --verbosity 0
	@echo "Agora on http://$(HOST):$(PORT)/ (demo accounts: see README.md)"
	HOST=$(HOST) PORT=$(PORT) scripts/run.sh

test:
	scripts/bootstrap.sh test
	$(MAKE) --no-print-directory lint typecheck pytest

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck:
	.venv/bin/mypy .

# AGORA_REQUIRE_DOCKER: a test run that cannot reach Docker fails instead of skipping the Docker tests.
# Tests marked serial (the dockerd restart) run alone after the parallel run: they disturb every Docker user.
pytest:
	DATABASE_URL=$(TEST_DATABASE_URL) AGORA_REQUIRE_DOCKER=1 .venv/bin/pytest -n 2 -p no:cacheprovider -m "not serial" $(PYTEST_ARGS)
	DATABASE_URL=$(TEST_DATABASE_URL) AGORA_REQUIRE_DOCKER=1 .venv/bin/pytest -p no:cacheprovider -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5: the selection has no serial test

bench: setup
	$(PY) bench/validate.py
