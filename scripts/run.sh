#!/usr/bin/env bash
# Runs Agora's processes together: the web server, one deployment worker and one monitoring collector.
# Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python manage.py worker &
worker=$!
.venv/bin/python manage.py monitor &
collector=$!
trap 'kill "$worker" "$collector" 2>/dev/null || true; wait "$worker" "$collector" 2>/dev/null || true' EXIT INT TERM
.venv/bin/gunicorn config.wsgi --bind "${HOST:-127.0.0.1}:${PORT:-8000}" --workers 2 --threads 4 --access-logfile -
