# Agora. `make run` serves the embedded default on http://127.0.0.1:8000;
# `make test` runs the checks and the whole test suite against the local PostgreSQL.
SHELL := /bin/bash
PY := .venv/bin/python
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck pytest bench setup lock outdated

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

# The lock: exact versions with hashes of what requirements*.txt allow (docs/decisions/0011-locked-installs.md).
# The dev lock is constrained by the runtime one, so `make run` and `make test` install the same versions.
# `make lock UPGRADE=1` moves every pin to the newest release the ranges allow; without it pins stay put.
PIP_COMPILE := .venv/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links --annotation-style=line $(if $(UPGRADE),--upgrade)
lock:
	scripts/bootstrap.sh test
	$(PIP_COMPILE) -o requirements.lock requirements.txt
	$(PIP_COMPILE) -c requirements.lock -o requirements-dev.lock requirements-dev.txt
	@echo "pinned: $$(grep -c '^[a-zA-Z0-9].*==' requirements.lock) runtime, $$(grep -c '^[a-zA-Z0-9].*==' requirements-dev.lock) with development"

# Newer releases than the lock's, whether or not requirements*.txt's ranges allow them.
outdated:
	scripts/bootstrap.sh test
	.venv/bin/pip list --outdated --disable-pip-version-check 2>/dev/null
