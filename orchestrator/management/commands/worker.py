"""`manage.py worker`: an RQ worker for deployment steps, with the reconciler beside it."""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from rq import SimpleWorker

from orchestrator import engine
from orchestrator.queue import redis_connection, step_queue

log = logging.getLogger(__name__)


def reconcile_forever(stop: threading.Event) -> None:
    """Looks for lost or waiting steps at start and every AGORA_RECONCILE_SECONDS."""
    while True:
        try:
            engine.reconcile()
        except Exception:
            log.exception("Reconciler pass failed; trying again shortly.")
        finally:
            close_old_connections()
        if stop.wait(settings.AGORA_RECONCILE_SECONDS):
            return


class Command(BaseCommand):
    help = "Runs deployment steps from the queue; several workers run steps in parallel."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--burst", action="store_true", help="Stop when the queue is empty (tests, scripts).")
        parser.add_argument("--name", default=None, help="Worker name (default: host and process id).")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        reconciler = threading.Thread(target=reconcile_forever, args=(stop,), name="reconciler", daemon=True)
        reconciler.start()
        connection = redis_connection()
        # SimpleWorker runs jobs in this process: no fork per step, and a killed worker is noticed through
        # its steps' leases, not through RQ's own bookkeeping.
        worker = SimpleWorker([step_queue(connection)], connection=connection, name=options["name"])
        try:
            worker.work(burst=options["burst"], with_scheduler=False, logging_level="WARNING")
        finally:
            stop.set()
            reconciler.join(timeout=5)
