"""`manage.py monitor`: the collector. Every interval one round per target, and the containers' logs
followed in between (monitoring/collector.py). Several collectors may run, each for its own targets;
two for the same target would store its log lines twice.

    manage.py monitor [--target NAME ...] [--interval SECONDS] [--once] [--name NAME]

Without --target it watches every registered target, and picks up targets registered later.
A round that fails (the database or a target away) is logged and tried again at the next interval,
waiting longer while failures go on. SIGTERM or SIGINT ends it after storing what it read.
"""

from __future__ import annotations

import datetime
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone

from crane.models import Target
from monitoring.collector import LogFollowers, RoundMemory, RoundReport, collect_round, default_name, purge

log = logging.getLogger(__name__)

PURGE_EVERY = datetime.timedelta(hours=1)
MAX_PAUSE_SECONDS = 300.0
_T = TypeVar("_T")


def _when_the_database_answers(query: Callable[[], _T], stop: threading.Event) -> _T | None:
    """The query's answer, asked again with a growing pause while the database is away (started beside it)."""
    pause = 1.0
    while True:
        try:
            return query()
        except DatabaseError as exc:
            log.warning("the collector waits for the database: %s", str(exc).strip())
            close_old_connections()
        if stop.wait(pause):
            return None
        pause = min(pause * 2, 30.0)


class Command(BaseCommand):
    help = "Collects metrics, task states, health and logs of the deployments on the targets; raises alerts."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--target", action="append", default=[], help="A target to watch (repeatable).")
        parser.add_argument(
            "--interval", type=float, default=None, help="Seconds between rounds (default AGORA_MONITOR_INTERVAL)."
        )
        parser.add_argument("--once", action="store_true", help="One round, the logs read to their end, then exit.")
        parser.add_argument("--name", default="", help="The collector's name in heartbeats (default: host/target).")

    def handle(self, *args: Any, **options: Any) -> None:
        interval = float(options["interval"] or settings.AGORA_MONITOR_INTERVAL)
        if interval <= 0:
            raise CommandError("--interval must be a positive number of seconds.")
        names: list[str] = options["target"]
        stop = threading.Event()
        if not options["once"]:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())

        def target_names() -> set[str]:
            return set(Target.objects.values_list("name", flat=True))

        # A one-off run fails at once without a database; a long-running one waits for it.
        known = target_names() if options["once"] else _when_the_database_answers(target_names, stop)
        if known is None:
            return  # asked to stop before the database answered
        missing = sorted(set(names) - known)
        if missing:
            raise CommandError(f"No such target: {', '.join(missing)}. See `manage.py crane targets`.")
        followers = LogFollowers(follow=not options["once"])
        memories: dict[int, RoundMemory] = {}
        last_purge: datetime.datetime | None = None
        failures = 0
        log.info("collector started: %s, every %g s", ", ".join(names) or "every target", interval)
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    watched = list(Target.objects.filter(name__in=names) if names else Target.objects.all())
                    reports = self._round(watched, memories, options["name"], interval)
                    for target, report in reports:
                        if report is not None and report.reachable:
                            followers.sync(target, report.containers)
                    # Only after a full round: cursors of containers a failed round did not list must stay.
                    complete = all(report is not None for _, report in reports)
                    if complete and (last_purge is None or timezone.now() - last_purge >= PURGE_EVERY):
                        live = [c.id for _, report in reports if report is not None for c in report.containers]
                        removed = purge(now=timezone.now(), targets_watched=watched, live=live)
                        last_purge = timezone.now()
                        log.info(
                            "retention: %d sample(s) and line(s) older than %d days removed",
                            removed,
                            settings.AGORA_MONITORING_RETENTION_DAYS,
                        )
                    failures = 0 if any(r is not None for _, r in reports) or not watched else failures + 1
                except DatabaseError as exc:
                    failures += 1
                    log.warning("the collector cannot use the database: %s", exc)
                    close_old_connections()
                if options["once"]:
                    break
                pause = interval * 2 ** min(failures, 5) if failures else interval
                stop.wait(max(0.0, min(pause, max(interval, MAX_PAUSE_SECONDS)) - (time.monotonic() - started)))
        finally:
            if options["once"]:
                followers.wait(timeout=60)
            if not followers.stop():
                log.warning("some log lines could not be stored; the next collector reads them again")
            log.info("collector stopped")

    def _round(
        self, watched: list[Target], memories: dict[int, RoundMemory], name: str, interval: float
    ) -> list[tuple[Target, RoundReport | None]]:
        def one(target: Target) -> RoundReport | None:
            memory = memories.setdefault(target.pk, RoundMemory())
            collector = f"{name}/{target.name}" if name else default_name(target)
            try:
                report = collect_round(target, memory=memory, collector=collector, interval=interval)
            except DatabaseError as exc:
                log.warning("round of target %s: the database is away (%s)", target.name, str(exc).strip())
                return None
            except Exception:
                log.exception("round of target %s failed", target.name)
                return None
            finally:
                close_old_connections()
            log.info("%s", report.summary())
            return report

        if len(watched) <= 1:
            return [(target, one(target)) for target in watched]

        def in_thread(target: Target) -> RoundReport | None:
            try:
                return one(target)
            finally:
                connections.close_all()  # this pool's threads end with the round

        with ThreadPoolExecutor(max_workers=min(8, len(watched)), thread_name_prefix="round") as pool:
            return list(zip(watched, pool.map(in_thread, watched), strict=True))
