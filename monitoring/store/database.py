"""The database store: metric samples and log lines in the platform's own database.

SQLite (the embedded default) goes through the ORM. PostgreSQL takes writes through
`COPY ... FROM STDIN` on Django's own connection: one round trip per batch instead of one
INSERT per row, which is what lets a collector and a Fluentd receiver keep up with
tens of thousands of lines a second.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection, transaction
from django.db.models import F, Func, Max, Model, Q, QuerySet, TextField, Value

from config.errors import ValidationFailed
from monitoring.models import LogLine, MetricSample
from monitoring.store.base import (
    LEVELS,
    METRICS,
    Line,
    LogPage,
    LogQuery,
    Point,
    Sample,
    bucket_starts,
    check_log_query,
    check_series,
    decode_cursor,
    encode_cursor,
    levels_from,
    points_from_rounds,
)

SOURCES = tuple(LogLine.Source.values)

# Rows per COPY or bulk INSERT: large enough to amortise a round trip, small enough to keep
# memory flat when a caller hands over a huge sequence.
WRITE_BATCH = 5000
# Rows per DELETE when purging: short transactions that never hold the tables for long.
PURGE_BATCH = 10_000

SAMPLE_COLUMNS = ("time", "deployment_id", "node", "container", *METRICS)
LINE_COLUMNS = ("time", "deployment_id", "node", "container", "source", "stream", "level", "message")


def _max_lengths(model: type[Any], fields: Sequence[str]) -> dict[str, int]:
    lengths = {field: model._meta.get_field(field).max_length for field in fields}
    return {field: int(length) for field, length in lengths.items() if length is not None}


# What the columns keep; Elasticsearch takes the same, so a switch of backend changes nothing accepted.
SAMPLE_TEXT_LIMITS = _max_lengths(MetricSample, ("deployment_id", "node", "container"))
LINE_TEXT_LIMITS = _max_lengths(LogLine, ("deployment_id", "node", "container", "stream"))
FLOAT_METRICS = frozenset({"cpu_percent"})


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="bad_monitoring_data")


def _check_text(kind: str, index: int, item: Sample | Line, limits: dict[str, int]) -> None:
    for field, limit in limits.items():
        value = getattr(item, field)
        if not isinstance(value, str):
            raise _refuse(f"{kind} {index}: {field} must be text")
        if len(value) > limit:
            raise _refuse(f"{kind} {index}: {field} is {len(value)} characters long, at most {limit} are kept")


def _check_time(kind: str, index: int, time: datetime.datetime) -> None:
    if not isinstance(time, datetime.datetime) or time.tzinfo is None or time.utcoffset() is None:
        raise _refuse(f"{kind} {index}: time must be a datetime with a time zone")


def validate_samples(samples: Sequence[Sample]) -> None:
    """Checks every sample before anything is written, so a bad one stores none of its batch."""
    for index, sample in enumerate(samples):
        _check_time("sample", index, sample.time)
        if not sample.deployment_id:
            raise _refuse(f"sample {index}: deployment_id is empty")
        _check_text("sample", index, sample, SAMPLE_TEXT_LIMITS)
        for metric in METRICS:
            value = getattr(sample, metric)
            numeric = (int, float) if metric in FLOAT_METRICS else (int,)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numeric)):
                kind = "a number" if metric in FLOAT_METRICS else "a whole number"
                raise _refuse(f"sample {index}: {metric} must be {kind} or None, not {value!r}")


def validate_lines(lines: Sequence[Line]) -> None:
    """Checks every line before anything is written, so a bad one stores none of its batch."""
    for index, line in enumerate(lines):
        _check_time("line", index, line.time)
        if line.level and line.level not in LEVELS:
            raise _refuse(f"line {index}: level {line.level!r} is not one of {', '.join(LEVELS)} (or empty)")
        if line.source not in SOURCES:
            raise _refuse(f"line {index}: source {line.source!r} is not one of {', '.join(SOURCES)}")
        if not isinstance(line.message, str):
            raise _refuse(f"line {index}: message must be text")
        _check_text("line", index, line, LINE_TEXT_LIMITS)


def _clean_message(message: str) -> str:
    # PostgreSQL text cannot hold NUL; a container may well print one. Keep the line, mark the byte.
    return message.replace("\x00", "\ufffd") if "\x00" in message else message


def _sample_row(sample: Sample) -> tuple[Any, ...]:
    return (
        sample.time,
        sample.deployment_id,
        sample.node,
        sample.container,
        *(getattr(sample, metric) for metric in METRICS),
    )


def _line_row(line: Line) -> tuple[Any, ...]:
    return (
        line.time,
        line.deployment_id,
        line.node,
        line.container,
        line.source,
        line.stream,
        line.level,
        _clean_message(line.message),
    )


def _batches(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _copy(table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> None:
    """Streams rows into a table with COPY through Django's connection (psycopg 3)."""
    statement = f"COPY {connection.ops.quote_name(table)} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)


def _write(model: type[Model], columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> int:
    """All the rows or none: COPY in batches on PostgreSQL, bulk inserts on SQLite."""
    if not rows:
        return 0
    with transaction.atomic():
        if connection.vendor == "postgresql":
            for batch in _batches(rows, WRITE_BATCH):
                _copy(model._meta.db_table, columns, batch)
        else:
            model._default_manager.bulk_create(
                (model(**dict(zip(columns, row, strict=True))) for row in rows), batch_size=500
            )
    return len(rows)


class DatabaseStore:
    name = "database"

    def write_samples(self, samples: Sequence[Sample]) -> int:
        validate_samples(samples)
        return _write(MetricSample, SAMPLE_COLUMNS, [_sample_row(sample) for sample in samples])

    def write_lines(self, lines: Sequence[Line]) -> int:
        validate_lines(lines)
        return _write(LogLine, LINE_COLUMNS, [_line_row(line) for line in lines])

    def series(
        self,
        deployment_id: str,
        *,
        node: str | None,
        since: datetime.datetime,
        until: datetime.datetime,
        bucket: datetime.timedelta,
    ) -> list[Point]:
        check_series(since=since, until=until, bucket=bucket)
        if connection.vendor != "postgresql":
            return _series_python(deployment_id, node=node, since=since, until=until, bucket=bucket)
        found = _series_postgres(deployment_id, node=node, since=since, until=until, bucket=bucket)
        empty: dict[str, float | None] = dict.fromkeys(METRICS)
        return [
            found.get(start) or Point(time=start, avg=dict(empty), max=dict(empty))
            for start in bucket_starts(since, until, bucket)
        ]

    def latest(self, deployment_id: str) -> dict[str, Sample]:
        newest = _newest_per_node(deployment_id)
        wanted = Q()
        for node, time in newest:
            wanted |= Q(node=node, time=time)
        if not wanted:
            return {}
        sums: dict[str, dict[str, Any]] = {}
        times: dict[str, datetime.datetime] = {}
        for row in MetricSample.objects.filter(wanted, deployment_id=deployment_id).values("node", "time", *METRICS):
            times[row["node"]] = row["time"]
            total = sums.setdefault(row["node"], dict.fromkeys(METRICS))
            for metric in METRICS:
                if row[metric] is not None:
                    total[metric] = (total[metric] or 0) + row[metric]
        return {
            node: Sample(time=times[node], deployment_id=deployment_id, node=node, **total)
            for node, total in sorted(sums.items())
        }

    def search_lines(self, query: LogQuery) -> LogPage:
        rows = list(lines_query(query)[: query.limit + 1])
        page = rows[: query.limit]
        next_before = None
        if len(rows) > query.limit:
            last = page[-1]
            next_before = encode_cursor([last.time.isoformat(), last.id])
        return LogPage(lines=[_line_of(row) for row in page], next_before=next_before)

    def purge(self, *, older_than: datetime.datetime) -> int:
        if older_than.tzinfo is None or older_than.utcoffset() is None:
            raise ValidationFailed("older_than must be a datetime with a time zone", code="bad_purge")
        # Raw SQL: the value must be in the form the backend stores (SQLite keeps text).
        cutoff = connection.ops.adapt_datetimefield_value(older_than)
        removed = 0
        for model in (MetricSample, LogLine):
            table = connection.ops.quote_name(model._meta.db_table)
            # Batches keep each transaction short, so writers are never blocked for long.
            # Only the model's table name is formatted in; the cutoff is a parameter.
            statement = f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE time < %s LIMIT {PURGE_BATCH})"  # noqa: S608
            while True:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(statement, [cutoff])
                    count = cursor.rowcount
                removed += count
                if count < PURGE_BATCH:
                    break
        return removed


# Log lines are full of paths, URLs, addresses and key=value pairs, which PostgreSQL's parser keeps
# whole ("/api/v1/users" is one token). Splitting on anything that is not a letter or a digit first
# makes "users", "v1" or "api/v1" find that line, as Elasticsearch's standard analyzer does.
WORD_SEPARATORS = "[^[:alnum:]]+"


def _words(expression: Any) -> Func:
    return Func(
        expression,
        Value(WORD_SEPARATORS),
        Value(" "),
        Value("g"),
        function="regexp_replace",
        output_field=TextField(),
    )


def text_search_vector() -> SearchVector:
    """The searched form of a line's message; migration 0002 indexes exactly this expression
    (after the deployment id), or PostgreSQL could not use the index."""
    return SearchVector(_words(F("message")), config="simple")


def _text_matches(text: str) -> Q:
    """Every word of the text is in the line. PostgreSQL (and Elasticsearch) match whole words,
    case-insensitively; SQLite, with no such index, matches them as parts of words."""
    if connection.vendor == "postgresql":
        return Q(message_vector=SearchQuery(_words(Value(text)), config="simple", search_type="plain"))
    matches = Q()
    for word in text.split():
        matches &= Q(message__icontains=word)
    return matches


# One index lookup per node instead of a pass over the deployment's samples (a fortnight of
# rounds): a loose index scan on (deployment_id, node, time), which PostgreSQL does not do by itself.
# Only the model's table name is formatted in; the deployment is a parameter.
NEWEST_PER_NODE = f"""
    WITH RECURSIVE nodes(node) AS (
        SELECT min(node) FROM {MetricSample._meta.db_table} WHERE deployment_id = %(deployment)s
        UNION ALL
        SELECT (
            SELECT min(node) FROM {MetricSample._meta.db_table}
            WHERE deployment_id = %(deployment)s AND node > nodes.node
        )
        FROM nodes WHERE nodes.node IS NOT NULL
    )
    SELECT node, (
        SELECT max(time) FROM {MetricSample._meta.db_table} WHERE deployment_id = %(deployment)s AND node = nodes.node
    )
    FROM nodes WHERE node IS NOT NULL
"""  # noqa: S608


def _newest_per_node(deployment_id: str) -> list[tuple[str, datetime.datetime]]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(NEWEST_PER_NODE, {"deployment": deployment_id})
            return [(node, time) for node, time in cursor.fetchall()]
    newest = (
        MetricSample.objects.filter(deployment_id=deployment_id)
        .values("node")
        .annotate(newest=Max("time"))
        .values_list("node", "newest")
    )
    return list(newest)


def lines_query(query: LogQuery) -> QuerySet[LogLine]:
    """The lines a query asks for, newest first, from its cursor on (keyset pagination, no OFFSET)."""
    check_log_query(query)
    lines = LogLine.objects.all()
    if query.deployment_id is not None:
        lines = lines.filter(deployment_id=query.deployment_id)
    if query.text:
        if connection.vendor == "postgresql":
            lines = lines.alias(message_vector=text_search_vector())
        lines = lines.filter(_text_matches(query.text))
    if query.level:
        lines = lines.filter(level__in=levels_from(query.level))
    if query.node:
        lines = lines.filter(node=query.node)
    if query.since is not None:
        lines = lines.filter(time__gte=query.since)
    if query.until is not None:
        lines = lines.filter(time__lt=query.until)
    if query.before is not None:
        before_time, before_id = _read_cursor(query.before)
        # Strictly older than the last line shown, ties broken by id. The plain time bound lets
        # the (deployment_id, time) index start at the cursor instead of at the newest line.
        lines = lines.filter(Q(time__lt=before_time) | Q(time=before_time, id__lt=before_id), time__lte=before_time)
    return lines.order_by("-time", "-id")


def _read_cursor(cursor: str) -> tuple[datetime.datetime, int]:
    time_text, line_id = decode_cursor(cursor, 2)
    try:
        time = datetime.datetime.fromisoformat(time_text)
        if time.tzinfo is None or type(line_id) is not int:
            raise ValueError(cursor)
    except (TypeError, ValueError):
        raise ValidationFailed(
            "this page cursor is not valid; start again from the newest lines", code="bad_cursor"
        ) from None
    return time, line_id


def _line_of(row: LogLine) -> Line:
    return Line(
        time=row.time,
        message=row.message,
        deployment_id=row.deployment_id,
        node=row.node,
        container=row.container,
        source=row.source,
        stream=row.stream,
        level=row.level,
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _series_postgres(
    deployment_id: str,
    *,
    node: str | None,
    since: datetime.datetime,
    until: datetime.datetime,
    bucket: datetime.timedelta,
) -> dict[datetime.datetime, Point]:
    sums = ", ".join(f"sum({metric}) AS {metric}" for metric in METRICS)
    aggregates = ", ".join(f"avg({metric}), max({metric})" for metric in METRICS)
    node_filter = "AND node = %(node)s" if node is not None else ""
    # A round's containers are added up first (one value per time), then bucketed by date_bin.
    # Only the model's table and column names are formatted in; every value is a parameter.
    statement = f"""
        WITH per_time AS (
            SELECT time, {sums} FROM {MetricSample._meta.db_table}
            WHERE deployment_id = %(deployment)s AND time >= %(since)s AND time < %(until)s {node_filter}
            GROUP BY time
        )
        SELECT date_bin(%(bucket)s::interval, time, %(since)s) AS start, {aggregates}
        FROM per_time GROUP BY start ORDER BY start
    """  # noqa: S608
    params = {
        "deployment": deployment_id,
        "node": node,
        "since": since,
        "until": until,
        "bucket": f"{bucket.total_seconds()} seconds",
    }
    points: dict[datetime.datetime, Point] = {}
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        for start, *values in cursor.fetchall():
            averages = {metric: _number(values[2 * index]) for index, metric in enumerate(METRICS)}
            maxima = {metric: _number(values[2 * index + 1]) for index, metric in enumerate(METRICS)}
            points[start] = Point(time=start, avg=averages, max=maxima)
    return points


def _series_python(
    deployment_id: str,
    *,
    node: str | None,
    since: datetime.datetime,
    until: datetime.datetime,
    bucket: datetime.timedelta,
) -> list[Point]:
    samples = MetricSample.objects.filter(deployment_id=deployment_id, time__gte=since, time__lt=until)
    if node is not None:
        samples = samples.filter(node=node)
    rounds: dict[datetime.datetime, dict[str, float | None]] = {}
    for row in samples.values("time", *METRICS):
        total = rounds.setdefault(row["time"], dict.fromkeys(METRICS))
        for metric in METRICS:
            if row[metric] is not None:
                total[metric] = (total[metric] or 0) + row[metric]
    return points_from_rounds(rounds, starts=bucket_starts(since, until, bucket), bucket=bucket)
