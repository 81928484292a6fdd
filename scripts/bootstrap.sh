#!/usr/bin/env bash
# Prepares this machine for Agora: a virtualenv with the Python packages, and the
# local services Agora needs, started when they are not running. Idempotent and quick
# when there is nothing to do. Usage: scripts/bootstrap.sh [run|test]
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# --- Python packages: exactly the lock's versions, each checked against its hash -----------------
# requirements*.txt hold the ranges people read; requirements*.lock what is installed (make lock).
lock=requirements.lock
[ "$mode" = test ] && lock=requirements-dev.lock
if [ ! -x .venv/bin/python ]; then
    say "Creating the virtualenv in .venv"
    python3 -m venv .venv
fi
stamp=".venv/.installed-$mode-$(sha256sum "$lock" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    say "Installing $lock"
    .venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r "$lock" 2> >(grep -v "^WARNING: Location" >&2)
    rm -f .venv/.installed-*-"$mode" .venv/.installed-"$mode"-*  # the stamps of earlier locks
    touch "$stamp"
fi

# --- PostgreSQL (the tests' database) -----------------------------------------------------
if [ "$mode" = test ]; then
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        if command -v pg_ctlcluster >/dev/null; then
            say "Starting PostgreSQL"
            pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
        fi
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
        pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }
    fi
fi

# --- Chromium (the browser tests drive Debian's, never a downloaded one) --------------------------
if [ "$mode" = test ] && [ ! -x /usr/bin/chromium ]; then
    say "Installing chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# --- Redis (the job queue) ----------------------------------------------------------------------
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    if ! command -v redis-server >/dev/null; then
        say "Installing redis-server"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    fi
    say "Starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/agora.log
fi

# --- Docker: the engine, a single-node swarm and the local base images ---------------------------
scripts/prepare-host.sh
