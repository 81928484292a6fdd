"""What a forwarded record becomes: one log line of the store. Pure: no database, no I/O.

Docker's fluentd log driver sends `{"log": ..., "source": "stdout", "container_name": "/x",
"container_id": ..., <labels named by --log-opt labels>}`; fluent-bit and fluentd send
whatever their inputs parsed, usually with a `log` or `message` field. A record without a
known message field is kept whole, as JSON.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models

from crane.names import LABEL_DEPLOYMENT, LABEL_NODE
from monitoring.fluentd.protocol import Entry, clean_text
from monitoring.models import LogLine
from monitoring.store import Line

MESSAGE_KEYS = ("log", "message", "msg", "MESSAGE")
LEVEL_KEYS = ("level", "severity", "levelname", "log_level", "loglevel")
LEVELS = {
    "trace": "debug",
    "debug": "debug",
    "info": "info",
    "information": "info",
    "informational": "info",
    "notice": "info",
    "warn": "warning",
    "warning": "warning",
    "err": "error",
    "error": "error",
    "crit": "critical",
    "critical": "critical",
    "fatal": "critical",
    "alert": "critical",
    "emerg": "critical",
    "emergency": "critical",
    "panic": "critical",
}
DOCKER_STREAMS = ("stdout", "stderr")


def _limit(name: str) -> int:
    field = LogLine._meta.get_field(name)
    assert isinstance(field, models.Field) and field.max_length is not None
    return int(field.max_length)


NODE_LENGTH = _limit("node")
CONTAINER_LENGTH = _limit("container")
STREAM_LENGTH = _limit("stream")
DEPLOYMENT_LENGTH = _limit("deployment_id")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return clean_text(value)
    return ""


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def message_of(record: dict[Any, Any]) -> str:
    for key in MESSAGE_KEYS:
        value = record.get(key)
        if isinstance(value, str | bytes):
            text = _text(value)
            # Docker strips the newline, fluent-bit's tail keeps it: the stored line has none.
            return text[:-1] if text.endswith("\n") else text
    rest = {str(key): value for key, value in record.items() if key not in (LABEL_DEPLOYMENT, LABEL_NODE)}
    try:
        return clean_text(json.dumps(rest, default=_json_default, ensure_ascii=False, sort_keys=True))
    except RecursionError:  # msgpack allows 1024 levels of nesting, json.dumps fewer
        return "(a record nested too deeply to show)"


def level_of(record: dict[Any, Any]) -> str:
    for key in LEVEL_KEYS:
        value = record.get(key)
        if isinstance(value, str):
            return LEVELS.get(value.strip().lower(), "")
    return ""


def claimed_deployment(record: dict[Any, Any]) -> str:
    """The deployment a record says it belongs to (the `agora.deployment` label Docker adds); "" if none."""
    value = record.get(LABEL_DEPLOYMENT)
    return value if isinstance(value, str) and 0 < len(value) <= DEPLOYMENT_LENGTH else ""


def line_of(entry: Entry, *, tag: str, deployment_id: str, platform: bool = False) -> Line:
    record = entry.record
    source = record.get("source")
    if platform:
        stream = _text(record.get("logger")) or tag
    elif source in DOCKER_STREAMS:
        stream = str(source)
    else:
        stream = tag
    container = _text(record.get("container_name")).lstrip("/") or _text(record.get("container_id"))[:12]
    return Line(
        time=entry.time,
        message=message_of(record),
        deployment_id=deployment_id,
        node=_text(record.get(LABEL_NODE))[:NODE_LENGTH],
        container=container[:CONTAINER_LENGTH],
        source=LogLine.Source.PLATFORM.value if platform else LogLine.Source.FLUENTD.value,
        stream=stream[:STREAM_LENGTH],
        level=level_of(record),
    )
