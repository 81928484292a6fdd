"""The store interface: what the collector, the Fluentd receiver and the platform write, and what the
API, the portal and the CLI read back. Two backends implement it: the database (default) and
Elasticsearch (`ELASTICSEARCH_URL`)."""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from config.errors import ValidationFailed


@dataclass(frozen=True)
class Sample:
    """One reading of one container. The samples of one collector round share one `time`:
    the store adds up a node's containers (and, for a whole deployment, all of them) that
    carry the same time before it averages or takes a maximum."""

    time: datetime.datetime
    deployment_id: str
    node: str
    container: str = ""
    cpu_percent: float | None = None
    memory_bytes: int | None = None
    memory_limit: int | None = None
    network_rx_bytes: int | None = None
    network_tx_bytes: int | None = None
    block_read_bytes: int | None = None
    block_write_bytes: int | None = None
    restarts: int | None = None


METRICS = (
    "cpu_percent",
    "memory_bytes",
    "memory_limit",
    "network_rx_bytes",
    "network_tx_bytes",
    "block_read_bytes",
    "block_write_bytes",
    "restarts",
)


@dataclass(frozen=True)
class Line:
    time: datetime.datetime
    message: str
    deployment_id: str = ""
    node: str = ""
    container: str = ""
    source: str = "docker"  # docker, fluentd, platform
    stream: str = ""  # stdout, stderr, or the Fluentd tag
    level: str = ""  # debug, info, warning, error, critical; "" when unknown
    # Who wrote the line, and where in what they read, stable when the same line is written again (the
    # collector's container and place in its log, a Fluentd chunk and the entry's place in it): a store
    # that cannot write a batch and its cursor together keys the line by it, so a retry overwrites.
    # "" when the producer has no such identity: such a line is never taken for another.
    key: str = field(default="", compare=False)


@dataclass(frozen=True)
class Point:
    """One bucket of a series: the average and the maximum of each metric over the bucket."""

    time: datetime.datetime
    avg: dict[str, float | None]
    max: dict[str, float | None]


LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True)
class LogQuery:
    deployment_id: str | None  # None: every deployment (operators); "": the platform's own events
    text: str = ""
    level: str = ""  # this level and above; lines of unknown level ("") only match no level filter
    node: str = ""
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None
    limit: int = 100
    before: str | None = None  # the cursor of the page after this one, from LogPage.next_before


@dataclass(frozen=True)
class LogPage:
    lines: list[Line] = field(default_factory=list)
    next_before: str | None = None  # pass as LogQuery.before for older lines; None when there are none


class Store(Protocol):
    name: str

    def write_samples(self, samples: Sequence[Sample]) -> int: ...

    def write_lines(self, lines: Sequence[Line]) -> int: ...

    def series(
        self,
        deployment_id: str,
        *,
        node: str | None,
        since: datetime.datetime,
        until: datetime.datetime,
        bucket: datetime.timedelta,
    ) -> list[Point]: ...

    def latest(self, deployment_id: str) -> dict[str, Sample]:
        """The newest sample of each node (summed over its containers)."""
        ...

    def search_lines(self, query: LogQuery) -> LogPage: ...

    def purge(self, *, older_than: datetime.datetime) -> int:
        """Removes samples and lines older than this; returns how many went."""
        ...


# Limits of the read side, the same for every backend.
MAX_LIMIT = 1000
MAX_BUCKETS = 10_000


def check_series(*, since: datetime.datetime, until: datetime.datetime, bucket: datetime.timedelta) -> None:
    for name, value in (("since", since), ("until", until)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationFailed(f"{name} must be a datetime with a time zone", code="bad_series")
    if bucket <= datetime.timedelta(0):
        raise ValidationFailed("the bucket must be longer than zero", code="bad_series")
    if until <= since:
        raise ValidationFailed("until must be later than since", code="bad_series")
    if (until - since) / bucket > MAX_BUCKETS:
        raise ValidationFailed(
            f"{since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} in buckets of {bucket} makes more than "
            f"{MAX_BUCKETS} points; choose a larger bucket",
            code="bad_series",
        )


def bucket_starts(
    since: datetime.datetime, until: datetime.datetime, bucket: datetime.timedelta
) -> list[datetime.datetime]:
    """The start of every bucket from since (the first) up to until (excluded)."""
    count = -((since - until) // bucket)  # ceiling division of timedeltas
    return [since + index * bucket for index in range(count)]


def points_from_rounds(
    rounds: dict[datetime.datetime, dict[str, float | None]],
    *,
    starts: list[datetime.datetime],
    bucket: datetime.timedelta,
) -> list[Point]:
    """One point per bucket start from the sums of each round (a node's or a deployment's containers
    added up at one sample time): the average and the maximum of those sums; None where no round of
    the bucket has the metric."""
    grouped: list[list[dict[str, float | None]]] = [[] for _ in starts]
    for time, sums in rounds.items():
        index = (time - starts[0]) // bucket
        if 0 <= index < len(starts):
            grouped[index].append(sums)
    points = []
    for start, members in zip(starts, grouped, strict=True):
        averages: dict[str, float | None] = {}
        maxima: dict[str, float | None] = {}
        for metric in METRICS:
            values = [float(value) for member in members if (value := member.get(metric)) is not None]
            averages[metric] = sum(values) / len(values) if values else None
            maxima[metric] = max(values) if values else None
        points.append(Point(time=start, avg=averages, max=maxima))
    return points


def check_log_query(query: LogQuery) -> None:
    if not 1 <= query.limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}, not {query.limit}", code="bad_log_query")
    if query.level and query.level not in LEVELS:
        raise ValidationFailed(f"level {query.level!r} is not one of {', '.join(LEVELS)}", code="bad_log_query")
    for name, value in (("since", query.since), ("until", query.until)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValidationFailed(f"{name} must be a datetime with a time zone", code="bad_log_query")
    if query.since is not None and query.until is not None and query.until <= query.since:
        raise ValidationFailed("until must be later than since", code="bad_log_query")


def levels_from(level: str) -> tuple[str, ...]:
    """This level and the ones above it."""
    return LEVELS[LEVELS.index(level) :]


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The values a backend put into a cursor; a cursor that is not one of ours is refused."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != length:
        raise ValidationFailed("this page cursor is not valid; start again from the newest lines", code="bad_cursor")
    return values
