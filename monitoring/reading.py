"""What people read back from monitoring: a deployment's health, its metrics over a time window, its logs.

Plain functions over the store and the health rows, shared by the API, the portal and the CLI. Callers
scope first (which deployments the person may see); nothing here checks permissions.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict
from typing import Any

from django.utils import timezone

from config.errors import ValidationFailed
from monitoring.models import DeploymentHealth
from monitoring.store import LogPage, LogQuery, Point, Sample, get_store

# The windows the portal and the API offer by name; `since`/`until` cover anything else.
RANGES: dict[str, datetime.timedelta] = {
    "15m": datetime.timedelta(minutes=15),
    "1h": datetime.timedelta(hours=1),
    "6h": datetime.timedelta(hours=6),
    "1d": datetime.timedelta(days=1),
    "7d": datetime.timedelta(days=7),
}
# Bucket sizes a chart reads well at: about a hundred points per window.
_NICE_BUCKETS = tuple(
    datetime.timedelta(seconds=s) for s in (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400)
)
POINTS_PER_CHART = 120


def window(
    *,
    range_name: str | None = None,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    bucket_seconds: int | None = None,
) -> tuple[datetime.datetime, datetime.datetime, datetime.timedelta]:
    """since, until and bucket from what a person asked: a named range ending now, or explicit times."""
    if range_name is not None and range_name not in RANGES:
        raise ValidationFailed(f"range must be one of {', '.join(RANGES)}, not {range_name!r}.", code="bad_range")
    until = until or timezone.now()
    since = since or until - RANGES[range_name or "1h"]
    if until <= since:
        raise ValidationFailed("until must be later than since.", code="bad_range")
    if bucket_seconds is not None:
        if bucket_seconds < 1:
            raise ValidationFailed("bucket must be at least one second.", code="bad_range")
        return since, until, datetime.timedelta(seconds=bucket_seconds)
    wanted = (until - since) / POINTS_PER_CHART
    bucket = next((b for b in _NICE_BUCKETS if b >= wanted), _NICE_BUCKETS[-1])
    return since, until, bucket


def _point(point: Point) -> dict[str, Any]:
    return {"time": point.time, "avg": point.avg, "max": point.max}


def _sample(sample: Sample) -> dict[str, Any]:
    values = asdict(sample)
    values.pop("deployment_id")
    values.pop("container")
    return values


def latest_metrics(deployment_id: str) -> dict[str, dict[str, Any]]:
    """The newest reading of each node, its containers added up."""
    return {node: _sample(sample) for node, sample in sorted(get_store().latest(deployment_id).items())}


def metrics(
    deployment_id: str,
    *,
    node: str | None = None,
    since: datetime.datetime,
    until: datetime.datetime,
    bucket: datetime.timedelta,
) -> dict[str, Any]:
    points = get_store().series(deployment_id, node=node or None, since=since, until=until, bucket=bucket)
    return {
        "node": node or None,
        "since": since,
        "until": until,
        "bucket_seconds": int(bucket.total_seconds()),
        "latest": latest_metrics(deployment_id),
        "points": [_point(p) for p in points],
    }


def logs(query: LogQuery) -> LogPage:
    return get_store().search_lines(query)


def health(deployment_id: str) -> dict[str, Any]:
    """The collector's last verdict; `unknown` until it has looked (or while the cloud does not answer)."""
    row = DeploymentHealth.objects.filter(deployment_id=deployment_id).first()
    if row is None:
        return {"health": DeploymentHealth.Health.UNKNOWN.value, "nodes": {}, "message": "", "checked_at": None}
    return {"health": row.health, "nodes": row.nodes, "message": row.message, "checked_at": row.checked_at}
