"""The platform's own events as log lines: the records of the `agora.events` (deployment
timeline) and `agora.audit` (who did what) loggers.

With FLUENTD_HOST set they go out through fluent-logger (tag `agora.platform`) to that
Fluentd, or to Agora's own receiver (`manage.py fluentd`), which stores them under their
deployment. Without it they are written straight into the monitoring store.

Either way a record is delivered only once the database transaction it was logged in
commits: an event whose transaction rolls back did not happen, like its Event row. And
logging never breaks what logs: every failure goes to `handleError` (a line on stderr).

This module is imported while logging is configured, before Django's apps are ready: it
imports models and the store only when a record comes.
"""

from __future__ import annotations

import datetime
import functools
import logging
import threading
from typing import Any

from django.conf import settings
from django.db import transaction
from fluent import asynchandler  # type: ignore[import-untyped]

PLATFORM_TAG = "agora.platform"
# Records the fluent sender may hold while Fluentd is away; beyond that the oldest are dropped,
# never the caller blocked.
FLUENT_QUEUE = 10_000
# How long closing the handler (at the process's exit) may spend sending what is still queued.
FLUSH_SECONDS = 5.0
LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}
# `extra` fields a record may carry that travel with it (never anything secret: see event() and audit()).
FIELDS = ("deployment_id", "kind", "action", "actor", "organization")


def level_of(record: logging.LogRecord) -> str:
    """The record's own `level` field (an Event's level, logged at INFO) when it names one, else its logging level."""
    named = getattr(record, "level", None)
    if named in LEVELS.values():
        return str(named)
    for number in sorted(LEVELS, reverse=True):
        if record.levelno >= number:
            return LEVELS[number]
    return "debug"


def fields_of(record: logging.LogRecord) -> dict[str, str]:
    return {name: str(getattr(record, name)) for name in FIELDS if getattr(record, name, None) not in (None, "")}


class _FluentFormatter(logging.Formatter):
    """The map fluent-logger sends; `agora.deployment` is the field Agora's receiver files a line under."""

    def format(self, record: logging.LogRecord) -> dict[str, Any]:  # type: ignore[override]
        data: dict[str, Any] = {
            "message": record.getMessage(),
            "level": level_of(record),
            "logger": record.name,
            **fields_of(record),
        }
        if data.get("deployment_id"):
            data["agora.deployment"] = data["deployment_id"]
        return data


class PlatformLogHandler(logging.Handler):
    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._fluent: asynchandler.FluentHandler | None = None
        host: str = settings.FLUENTD_HOST
        if host:
            self._fluent = asynchandler.FluentHandler(
                PLATFORM_TAG,
                host=host,
                port=settings.FLUENTD_PORT,
                nanosecond_precision=True,
                queue_circular=True,  # drop the oldest when full instead of blocking a request
                queue_maxsize=FLUENT_QUEUE,
            )
            self._fluent.setFormatter(_FluentFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            deliver = self._send if self._fluent is not None else self._store
            # Runs at once outside a transaction, after the commit inside one, never after a rollback.
            transaction.on_commit(functools.partial(self._deliver, deliver, record), robust=True)
        except Exception:
            self.handleError(record)

    def _deliver(self, deliver: Any, record: logging.LogRecord) -> None:
        try:
            deliver(record)
        except Exception:
            self.handleError(record)

    def _send(self, record: logging.LogRecord) -> None:
        assert self._fluent is not None
        self._fluent.emit(record)

    def _store(self, record: logging.LogRecord) -> None:
        from monitoring.store import Line, get_store

        fields = fields_of(record)
        get_store().write_lines(
            [
                Line(
                    time=datetime.datetime.fromtimestamp(record.created, datetime.UTC),
                    message=record.getMessage(),
                    deployment_id=fields.get("deployment_id", "")[:24],
                    source="platform",
                    stream=record.name[:16],
                    level=level_of(record),
                )
            ]
        )

    def close(self) -> None:
        try:
            if self._fluent is not None:
                # Sends what is queued, but a Fluentd that is away must not hold up the process's exit:
                # the sender tries each queued record for seconds. Its thread is a daemon; left behind, it ends with us.
                flush = threading.Thread(target=self._fluent.close, name="platform-log-flush", daemon=True)
                flush.start()
                flush.join(FLUSH_SECONDS)
        finally:
            super().close()
