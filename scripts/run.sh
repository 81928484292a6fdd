#!/usr/bin/env bash
# Runs Agora's processes together: the web server and one deployment worker. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python manage.py worker &
worker=$!
trap 'kill "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true' EXIT INT TERM
.venv/bin/gunicorn config.wsgi --bind "${HOST:-127.0.0.1}:${PORT:-8000}" --workers 2 --threads 4 --access-logfile -
