"""The Elasticsearch store: metric samples and log lines in daily indices of a cluster.

One index per kind and UTC day (`agora-metrics-2026.11.24`, `agora-logs-2026.11.24`), each
made from an index template with explicit mappings, so retention deletes whole indices instead
of documents. Writes go through the client's bulk helper; log pages through `search_after`.

The 9.x client speaks to 9.x clusters. For an 8.x cluster install the 8.x client
(`elasticsearch>=8.13,<9`): this module calls only APIs and arguments both have.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import itertools
import os
import time as clock
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError, helpers

from config.errors import AgoraError, ValidationFailed
from monitoring.store.base import (
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
from monitoring.store.database import validate_lines, validate_samples

# Documents per bulk request: a few MB of log lines, the size Elasticsearch's docs suggest starting from.
BULK_CHUNK = 2000
# Rounds (distinct sample times) fetched per page of the composite aggregation.
ROUNDS_PAGE = 2000
# Nodes of one deployment that `latest` reports; a deployment has a handful.
MAX_NODES = 1000

METRIC_TYPES: dict[str, str] = {
    # double, not float: averages of known values come back exact.
    "cpu_percent": "double",
    "memory_bytes": "long",
    "memory_limit": "long",
    "network_rx_bytes": "long",
    "network_tx_bytes": "long",
    "block_read_bytes": "long",
    "block_write_bytes": "long",
    "restarts": "integer",
}
assert tuple(METRIC_TYPES) == METRICS

KEYWORD = {"type": "keyword"}

METRICS_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "time": {"type": "date"},
        "deployment_id": KEYWORD,
        "node": KEYWORD,
        "container": KEYWORD,
        **{metric: {"type": kind} for metric, kind in METRIC_TYPES.items()},
    },
}

LOGS_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        # Nanoseconds: lines a container prints within one millisecond keep their order.
        "time": {"type": "date_nanos"},
        "seq": KEYWORD,  # the tiebreaker of lines with the same time: unique, in write order
        "deployment_id": KEYWORD,
        "node": KEYWORD,
        "container": KEYWORD,
        "source": KEYWORD,
        "stream": KEYWORD,
        "level": KEYWORD,
        "message": {"type": "text"},
    },
}

TIME_FORMAT = "strict_date_optional_time_nanos"


class StoreUnavailable(AgoraError):
    """The cluster did not answer or refused the request."""

    code = "store_unavailable"
    http_status = 503


@contextlib.contextmanager
def _talking_to_elasticsearch(action: str) -> Iterator[None]:
    """Turns the client's errors into one an API answer can carry. The messages name what failed,
    never a document (a log line may hold a secret) nor the URL (it may hold credentials)."""
    try:
        yield
    except helpers.BulkIndexError as error:
        reasons = sorted(
            {
                str(item.get("error", {}).get("type", item.get("status", "unknown")))
                for result in error.errors
                for item in result.values()
                if isinstance(item, dict)
            }
        )
        raise StoreUnavailable(
            f"Elasticsearch refused {len(error.errors)} documents while {action} ({', '.join(reasons)})"
        ) from error
    except ApiError as error:
        status = error.meta.status
        raise StoreUnavailable(f"Elasticsearch answered {status} ({error.message}) while {action}") from error
    except TransportError as error:
        raise StoreUnavailable(f"Elasticsearch could not be reached while {action} ({type(error).__name__})") from error


def _utc_text(time: datetime.datetime) -> str:
    return time.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch_ms(time: datetime.datetime) -> int:
    return int(time.timestamp() * 1000)


def _time_of(value: Any) -> datetime.datetime:
    """A time as Elasticsearch returns it: epoch milliseconds or an ISO 8601 string."""
    if isinstance(value, int | float):
        return datetime.datetime.fromtimestamp(value / 1000, tz=datetime.UTC)
    text = str(value)
    if "." in text:
        # Python keeps microseconds; date_nanos may return nine digits.
        head, _, tail = text.partition(".")
        digits = "".join(itertools.takewhile(str.isdigit, tail))
        text = f"{head}.{digits[:6]}{tail[len(digits) :]}"
    return datetime.datetime.fromisoformat(text).astimezone(datetime.UTC)


class ElasticStore:
    name = "elasticsearch"

    def __init__(self, url: str, *, prefix: str = "agora", request_timeout: float = 30.0) -> None:
        self.url = url
        self.prefix = prefix
        self.request_timeout = request_timeout
        self._client: Elasticsearch | None = None
        self._templates_ready = False
        self._sequence = itertools.count()

    # The client is made on first use, never at import time, and kept: it pools its connections.
    @property
    def client(self) -> Elasticsearch:
        if self._client is None:
            self._client = Elasticsearch(
                self.url, request_timeout=self.request_timeout, retry_on_timeout=True, max_retries=3
            )
        return self._client

    def index_pattern(self, kind: str) -> str:
        return f"{self.prefix}-{kind}-*"

    def index_name(self, kind: str, time: datetime.datetime) -> str:
        return f"{self.prefix}-{kind}-{time.astimezone(datetime.UTC):%Y.%m.%d}"

    def ensure_templates(self) -> None:
        """One index template per kind: every daily index gets the same explicit mappings."""
        if self._templates_ready:
            return
        with _talking_to_elasticsearch("installing the index templates"):
            for kind, mapping in (("metrics", METRICS_MAPPING), ("logs", LOGS_MAPPING)):
                self.client.indices.put_index_template(
                    name=f"{self.prefix}-{kind}",
                    index_patterns=[self.index_pattern(kind)],
                    # Above the built-in templates (100) so nothing else shapes these indices.
                    priority=200,
                    template={"settings": {"number_of_shards": 1}, "mappings": mapping},
                    meta={"managed_by": "agora"},
                )
        self._templates_ready = True

    def _bulk(self, actions: Iterable[dict[str, Any]], action: str) -> None:
        self.ensure_templates()
        with _talking_to_elasticsearch(action):
            helpers.bulk(self.client, actions, chunk_size=BULK_CHUNK, max_retries=3, raise_on_error=True)

    def write_samples(self, samples: Sequence[Sample]) -> int:
        validate_samples(samples)
        if not samples:
            return 0
        self._bulk((self._sample_action(sample) for sample in samples), "storing metric samples")
        return len(samples)

    def _sample_action(self, sample: Sample) -> dict[str, Any]:
        document: dict[str, Any] = {
            "time": _utc_text(sample.time),
            "deployment_id": sample.deployment_id,
            "node": sample.node,
            "container": sample.container,
        }
        document.update((metric, value) for metric in METRICS if (value := getattr(sample, metric)) is not None)
        return {
            "_index": self.index_name("metrics", sample.time),
            # One reading of one container has one id, so a resent batch overwrites instead of doubling.
            "_id": f"{sample.deployment_id}/{sample.node}/{sample.container}/{_epoch_ms(sample.time)}",
            "_source": document,
        }

    def write_lines(self, lines: Sequence[Line]) -> int:
        validate_lines(lines)
        if not lines:
            return 0
        # The sequence orders lines of equal time by write: this process's clock, then its counter. It is
        # also the id of a line without a key; a keyed line's id comes from its key (line_id).
        stamp = f"{clock.time_ns():020d}-{os.getpid():08d}"
        actions = (self._line_action(line, f"{stamp}-{next(self._sequence):012d}") for line in lines)
        self._bulk(actions, "storing log lines")
        return len(lines)

    def _line_action(self, line: Line, seq: str) -> dict[str, Any]:
        return {
            "_op_type": "index",  # not "create": a line written again replaces itself
            "_index": self.index_name("logs", line.time),
            "_id": line_id(line) or seq,
            "_source": {
                "time": _utc_text(line.time),
                "seq": seq,
                "deployment_id": line.deployment_id,
                "node": line.node,
                "container": line.container,
                "source": line.source,
                "stream": line.stream,
                "level": line.level,
                "message": line.message,
            },
        }

    def _search(self, kind: str, action: str, **request: Any) -> dict[str, Any]:
        with _talking_to_elasticsearch(action):
            response = self.client.search(
                index=self.index_pattern(kind), allow_no_indices=True, ignore_unavailable=True, **request
            )
        return dict(response.body)

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
        filters: list[dict[str, Any]] = [
            {"term": {"deployment_id": deployment_id}},
            {"range": {"time": {"gte": _utc_text(since), "lt": _utc_text(until)}}},
        ]
        if node is not None:
            filters.append({"term": {"node": node}})
        # A round's containers are added up first: one composite bucket per sample time, with the
        # sum and the count of each metric. The average and maximum over a bucket's rounds are
        # taken here, because Elasticsearch's bucket pipelines count a missing metric as 0.
        per_metric: dict[str, Any] = {}
        for metric in METRICS:
            per_metric[f"{metric}_sum"] = {"sum": {"field": metric}}
            per_metric[f"{metric}_count"] = {"value_count": {"field": metric}}
        rounds: dict[datetime.datetime, dict[str, float | None]] = {}
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {
                "size": ROUNDS_PAGE,
                "sources": [{"time": {"date_histogram": {"field": "time", "fixed_interval": "1ms"}}}],
            }
            if after is not None:
                composite["after"] = after
            body = self._search(
                "metrics",
                "reading a series",
                size=0,
                query={"bool": {"filter": filters}},
                aggs={"rounds": {"composite": composite, "aggs": per_metric}},
            )
            result = body.get("aggregations", {}).get("rounds", {})
            for found in result.get("buckets", []):
                rounds[_time_of(found["key"]["time"])] = {
                    metric: found[f"{metric}_sum"]["value"] if found[f"{metric}_count"]["value"] else None
                    for metric in METRICS
                }
            after = result.get("after_key")
            if after is None or len(result.get("buckets", [])) < ROUNDS_PAGE:
                break
        return points_from_rounds(rounds, starts=bucket_starts(since, until, bucket), bucket=bucket)

    def latest(self, deployment_id: str) -> dict[str, Sample]:
        per_metric: dict[str, Any] = {}
        for metric in METRICS:
            per_metric[f"{metric}_sum"] = {"sum": {"field": metric}}
            per_metric[f"{metric}_count"] = {"value_count": {"field": metric}}
        body = self._search(
            "metrics",
            "reading the latest samples",
            size=0,
            query={"bool": {"filter": [{"term": {"deployment_id": deployment_id}}]}},
            aggs={
                "nodes": {
                    "terms": {"field": "node", "size": MAX_NODES},
                    "aggs": {
                        # The newest round of the node, its containers added up.
                        "newest": {
                            "terms": {"field": "time", "size": 1, "order": {"_key": "desc"}},
                            "aggs": per_metric,
                        }
                    },
                }
            },
        )
        latest: dict[str, Sample] = {}
        for node_bucket in body.get("aggregations", {}).get("nodes", {}).get("buckets", []):
            newest = node_bucket["newest"]["buckets"]
            if not newest:
                continue
            found = newest[0]
            values: dict[str, Any] = {}
            for metric in METRICS:
                total = found[f"{metric}_sum"]["value"] if found[f"{metric}_count"]["value"] else None
                values[metric] = total if total is None or METRIC_TYPES[metric] == "double" else int(total)
            node = str(node_bucket["key"])
            latest[node] = Sample(time=_time_of(found["key"]), deployment_id=deployment_id, node=node, **values)
        return dict(sorted(latest.items()))

    def search_lines(self, query: LogQuery) -> LogPage:
        check_log_query(query)
        filters: list[dict[str, Any]] = []
        if query.deployment_id is not None:
            filters.append({"term": {"deployment_id": query.deployment_id}})
        if query.level:
            filters.append({"terms": {"level": list(levels_from(query.level))}})
        if query.node:
            filters.append({"term": {"node": query.node}})
        time_range: dict[str, str] = {}
        if query.since is not None:
            time_range["gte"] = _utc_text(query.since)
        if query.until is not None:
            time_range["lt"] = _utc_text(query.until)
        if time_range:
            filters.append({"range": {"time": time_range}})
        must: list[dict[str, Any]] = []
        if query.text:
            must.append({"match": {"message": {"query": query.text, "operator": "and"}}})
        request: dict[str, Any] = {
            "size": query.limit + 1,
            "query": {"bool": {"filter": filters, "must": must}},
            "sort": [{"time": {"order": "desc", "format": TIME_FORMAT}}, {"seq": {"order": "desc"}}],
            "track_total_hits": False,
        }
        if query.before is not None:
            before = decode_cursor(query.before, 2)
            if not all(isinstance(value, str) for value in before):
                raise ValidationFailed(
                    "this page cursor is not valid; start again from the newest lines", code="bad_cursor"
                )
            request["search_after"] = before
        hits = self._search("logs", "searching log lines", **request)["hits"]["hits"]
        page = hits[: query.limit]
        next_before = encode_cursor(list(page[-1]["sort"])) if len(hits) > query.limit else None
        return LogPage(lines=[_line_of(hit["_source"]) for hit in page], next_before=next_before)

    def daily_indices(self) -> dict[str, int]:
        """Every daily index of this store, with how many documents it holds."""
        with _talking_to_elasticsearch("listing the daily indices"):
            stats = self.client.indices.stats(
                index=[self.index_pattern("metrics"), self.index_pattern("logs")], metric="docs"
            )
        return {
            name: int(index["primaries"].get("docs", {}).get("count", 0))
            for name, index in stats.body.get("indices", {}).items()
        }

    def purge(self, *, older_than: datetime.datetime) -> int:
        """Deletes every daily index whose whole day lies before the cutoff: retention is by day."""
        if older_than.tzinfo is None or older_than.utcoffset() is None:
            raise ValidationFailed("older_than must be a datetime with a time zone", code="bad_purge")
        expired: dict[str, int] = {}
        for name, documents in self.daily_indices().items():
            try:
                day = datetime.datetime.strptime(name.rsplit("-", 1)[1], "%Y.%m.%d").replace(tzinfo=datetime.UTC)
            except ValueError:
                continue  # not one of ours: someone else's index under the same prefix
            if day + datetime.timedelta(days=1) <= older_than:
                expired[name] = documents
        names = sorted(expired)
        # Named one by one, never by wildcard: clusters refuse wildcard deletes by default.
        for start in range(0, len(names), 50):
            with _talking_to_elasticsearch("deleting expired indices"):
                self.client.indices.delete(index=names[start : start + 50], ignore_unavailable=True)
        return sum(expired.values())

    def refresh(self) -> None:
        """Makes every write so far visible to searches (Elasticsearch does it each second anyway)."""
        with _talking_to_elasticsearch("refreshing"):
            self.client.indices.refresh(
                index=[self.index_pattern("metrics"), self.index_pattern("logs")],
                allow_no_indices=True,
                ignore_unavailable=True,
            )

    def drop(self) -> None:
        """Deletes this store's indices and templates: for tests and benchmarks with their own prefix."""
        names = sorted(self.daily_indices())
        with _talking_to_elasticsearch("dropping the store"):
            for start in range(0, len(names), 50):
                self.client.indices.delete(index=names[start : start + 50], ignore_unavailable=True)
            for kind in ("metrics", "logs"):
                with contextlib.suppress(ApiError):
                    self.client.indices.delete_index_template(name=f"{self.prefix}-{kind}")
        self._templates_ready = False


def line_id(line: Line) -> str:
    """The document id of a keyed line: the same line written again (a batch retried after its cursor
    could not be committed, a Fluentd chunk resent) gets the same id and overwrites itself. The bulk
    write is not in the database transaction that moves the cursor, so ids are what keeps a retry from
    doubling lines. "" for a line without a key: it gets an id of its own (its seq)."""
    if not line.key:
        return ""
    identity = "\x1f".join((line.source, line.deployment_id, line.container, _utc_text(line.time), line.key))
    return hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()


def _line_of(source: dict[str, Any]) -> Line:
    return Line(
        time=_time_of(source["time"]),
        message=source["message"],
        deployment_id=source["deployment_id"],
        node=source["node"],
        container=source["container"],
        source=source["source"],
        stream=source["stream"],
        level=source["level"],
    )
