"""The store interface: what the collector, the Fluentd receiver and the platform write, and what the
API, the portal and the CLI read back. Two backends implement it: the database (default) and
Elasticsearch (`ELASTICSEARCH_URL`)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Sample:
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


@dataclass(frozen=True)
class Point:
    """One bucket of a series: the average and the maximum of each metric over the bucket."""

    time: datetime.datetime
    avg: dict[str, float | None]
    max: dict[str, float | None]


@dataclass(frozen=True)
class LogQuery:
    deployment_id: str | None  # None: every deployment (operators); "": the platform's own events
    text: str = ""
    level: str = ""  # this level and above
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
