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
	.venv/bin/gunicorn config.wsgi --bind $(HOST):$(PORT) --workers 2 --threads 4 --access-logfile -

test:
	scripts/bootstrap.sh test
	$(MAKE) --no-print-directory lint typecheck pytest

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck:
	.venv/bin/mypy .

pytest:
	DATABASE_URL=$(TEST_DATABASE_URL) .venv/bin/pytest -n 2 -p no:cacheprovider $(PYTEST_ARGS)

bench: setup
	$(PY) bench/validate.py
