"""RQ jobs: thin, they take an id and call the engine."""

from __future__ import annotations

import os
import socket

from django.db import close_old_connections

from orchestrator import engine


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_step(step_id: int) -> None:
    close_old_connections()
    try:
        engine.run_step(step_id, worker_identity())
    finally:
        close_old_connections()
