"""`manage.py worker`: an RQ worker for deployment steps, with the reconciler beside it."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import suppress
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.exceptions import StopRequested

from orchestrator import engine
from orchestrator.queue import redis_connection, step_queue

log = logging.getLogger(__name__)

# RQ leaves its work loop when Redis stays away longer than its client retries; the worker starts
# it again after this pause, for as long as nobody asked it to stop.
RESTART_PAUSE_SECONDS = 1.0


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


class StepWorker(SimpleWorker):
    """SimpleWorker runs jobs in this process: no fork per step, and a killed worker is noticed through
    its steps' leases, not through RQ's own bookkeeping. This one remembers being asked to stop."""

    def __init__(self, *args: Any, stopping: threading.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stopping = stopping

    def request_stop(self, signum: Any, frame: Any) -> None:  # SIGINT, SIGTERM
        self.stopping.set()
        super().request_stop(signum, frame)


def _retire(worker: StepWorker) -> None:
    """What RQ's teardown does, when the loop ended before it could: no Redis needed to stop its thread."""
    with suppress(RedisError):
        worker.register_death()
    thread = getattr(worker, "pubsub_thread", None)
    if thread is not None:
        thread.stop()  # it listened for RQ's worker commands; the next loop's worker listens instead


class Command(BaseCommand):
    help = "Runs deployment steps from the queue; several workers run steps in parallel."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--burst", action="store_true", help="Stop when the queue is empty (tests, scripts).")
        parser.add_argument("--name", default=None, help="Worker name (default: host and process id).")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        reconciler = threading.Thread(target=reconcile_forever, args=(stop,), name="reconciler", daemon=True)
        reconciler.start()
        worker: StepWorker | None = None
        try:
            while True:
                if worker is not None:
                    _retire(worker)
                try:
                    connection = redis_connection()
                    worker = StepWorker(
                        [step_queue(connection)], connection=connection, name=options["name"], stopping=stop
                    )
                    worker.work(burst=options["burst"], with_scheduler=False, logging_level="WARNING")
                except RedisError as exc:
                    if options["burst"]:
                        raise
                    log.warning("The worker cannot reach Redis: %s", exc)
                if options["burst"] or stop.is_set():
                    return
                log.warning("The worker stopped unasked (Redis away?); working again shortly.")
                try:
                    time.sleep(RESTART_PAUSE_SECONDS)
                except (StopRequested, RedisError):  # a signal during the pause, through RQ's handler
                    return
        finally:
            stop.set()
            reconciler.join(timeout=5)
