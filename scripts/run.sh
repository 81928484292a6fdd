#!/usr/bin/env bash
# Runs Agora's processes together: the web server, one deployment worker, one monitoring collector and
# the Fluentd forward receiver (AGORA_FLUENTD_BIND, 127.0.0.1:24224). Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python manage.py worker &
worker=$!
.venv/bin/python manage.py monitor &
collector=$!
.venv/bin/python manage.py fluentd &
receiver=$!
trap 'kill "$worker" "$collector" "$receiver" 2>/dev/null || true; wait "$worker" "$collector" "$receiver" 2>/dev/null || true' EXIT INT TERM
.venv/bin/gunicorn config.wsgi --bind "${HOST:-127.0.0.1}:${PORT:-8000}" --workers 2 --threads 4 --access-logfile -
