"""The monitoring store: one battery, run against every backend.

The database backend always runs (PostgreSQL in the test suite; the SQLite path of the embedded
mode has its own test below, in a child process). The Elasticsearch backend runs when
ELASTICSEARCH_URL names a cluster, in indices of its own prefix that it deletes afterwards;
otherwise its cases are reported as skipped.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from config.errors import ValidationFailed
from monitoring.store.base import METRICS, Line, LogQuery, Sample, Store
from monitoring.store.database import DatabaseStore

ELASTICSEARCH_URL = os.environ.get("ELASTICSEARCH_URL", "")
REPO = Path(__file__).resolve().parents[2]

T0 = datetime.datetime(2026, 3, 2, 10, 0, tzinfo=datetime.UTC)
SECOND = datetime.timedelta(seconds=1)


@pytest.fixture(
    params=[
        "database",
        pytest.param(
            "elasticsearch", marks=pytest.mark.skipif(not ELASTICSEARCH_URL, reason="ELASTICSEARCH_URL is not set")
        ),
    ]
)
def store(request: pytest.FixtureRequest, db: None) -> Iterator[Store]:
    if request.param == "database":
        yield DatabaseStore()
        return
    from monitoring.store.elastic import ElasticStore

    elastic = ElasticStore(ELASTICSEARCH_URL, prefix=f"agora-test-{uuid.uuid4().hex[:12]}")
    try:
        yield elastic
    finally:
        elastic.drop()


def settle(store: Store) -> None:
    """Elasticsearch shows writes to searches after a refresh; the database at once."""
    refresh = getattr(store, "refresh", None)
    if refresh is not None:
        refresh()


@pytest.fixture
def deployment() -> str:
    return uuid.uuid4().hex[:24]


def sample(deployment: str, node: str, container: str, at: datetime.datetime, **metrics: float) -> Sample:
    return Sample(time=at, deployment_id=deployment, node=node, container=container, **metrics)  # type: ignore[arg-type]


def line(deployment: str, message: str, at: datetime.datetime, **fields: str) -> Line:
    return Line(time=at, message=message, deployment_id=deployment, **fields)


def messages(store: Store, query: LogQuery) -> list[str]:
    return [found.message for found in store.search_lines(query).lines]


# Writes


def test_written_lines_come_back_whole_and_newest_first(store: Store, deployment: str) -> None:
    written = [
        Line(
            time=T0 + index * SECOND,
            message=f"request {index} served",
            deployment_id=deployment,
            node="web",
            container=f"web.1.{index}",
            source="docker",
            stream="stderr" if index % 2 else "stdout",
            level="info",
        )
        for index in range(5)
    ]
    assert store.write_lines(written) == 5
    assert store.write_lines([]) == 0
    settle(store)

    page = store.search_lines(LogQuery(deployment_id=deployment))

    assert page.lines == list(reversed(written))
    assert page.next_before is None


def test_written_samples_come_back_in_latest(store: Store, deployment: str) -> None:
    written = sample(
        deployment,
        "web",
        "web.1.a",
        T0,
        cpu_percent=12.5,
        memory_bytes=64 * 2**20,
        memory_limit=256 * 2**20,
        network_rx_bytes=1000,
        network_tx_bytes=2000,
        block_read_bytes=3000,
        block_write_bytes=4000,
        restarts=1,
    )
    assert store.write_samples([written]) == 1
    settle(store)

    latest = store.latest(deployment)

    assert latest == {"web": Sample(**{**written.__dict__, "container": ""})}


def test_a_bad_line_or_sample_stores_nothing_of_its_batch(store: Store, deployment: str) -> None:
    good = line(deployment, "fine", T0)
    bad_batches: list[list[Line]] = [
        [good, line(deployment, "loud", T0, level="shouting")],
        [good, line(deployment, "odd", T0, source="carrier-pigeon")],
        [good, line(deployment, "long", T0, node="n" * 65)],
        [good, Line(time=T0.replace(tzinfo=None), message="naive", deployment_id=deployment)],
    ]
    for batch in bad_batches:
        with pytest.raises(ValidationFailed):
            store.write_lines(batch)
    bad_samples: list[list[Sample]] = [
        [sample(deployment, "web", "c", T0, cpu_percent=1.0), sample("", "web", "c", T0)],
        [sample(deployment, "web", "c", T0, memory_bytes=1.5)],
        [sample(deployment, "web", "c", T0, cpu_percent="high")],  # type: ignore[arg-type]
    ]
    for samples in bad_samples:
        with pytest.raises(ValidationFailed):
            store.write_samples(samples)
    settle(store)

    assert store.search_lines(LogQuery(deployment_id=deployment)).lines == []
    assert store.latest(deployment) == {}


# Series


def rounds_of_known_data(deployment: str) -> list[Sample]:
    """Rounds every 15 s from T0: web has two containers (summed per round), db one.

    web cpu per round (sum of its containers): 10, 30 | 20, 60 | (nothing) | 5
    db  cpu per round:                          1,  3 |  2,  6 | (nothing) | 1
    """
    web = [(0, 4.0, 6.0), (15, 10.0, 20.0), (30, 8.0, 12.0), (45, 20.0, 40.0), (90, 2.5, 2.5)]
    db = [(0, 1.0), (15, 3.0), (30, 2.0), (45, 6.0), (90, 1.0)]
    samples = []
    for seconds, first, second in web:
        at = T0 + seconds * SECOND
        samples.append(sample(deployment, "web", "web.1", at, cpu_percent=first, memory_bytes=100))
        samples.append(sample(deployment, "web", "web.2", at, cpu_percent=second, memory_bytes=300))
    for seconds, cpu in db:
        samples.append(sample(deployment, "db", "db.1", T0 + seconds * SECOND, cpu_percent=cpu))
    return samples


def test_series_of_a_node_averages_and_maximises_its_rounds_per_bucket(store: Store, deployment: str) -> None:
    store.write_samples(rounds_of_known_data(deployment))
    settle(store)

    points = store.series(deployment, node="web", since=T0, until=T0 + 120 * SECOND, bucket=30 * SECOND)

    assert [point.time for point in points] == [T0, T0 + 30 * SECOND, T0 + 60 * SECOND, T0 + 90 * SECOND]
    assert [point.avg["cpu_percent"] for point in points] == [20.0, 40.0, None, 5.0]
    assert [point.max["cpu_percent"] for point in points] == [30.0, 60.0, None, 5.0]
    assert [point.avg["memory_bytes"] for point in points] == [400.0, 400.0, None, 400.0]
    # A metric no sample carries is None, not zero.
    assert {point.avg["restarts"] for point in points} == {None}
    assert set(points[0].avg) == set(METRICS) == set(points[0].max)


def test_series_of_a_deployment_adds_up_its_nodes_per_round(store: Store, deployment: str) -> None:
    store.write_samples(rounds_of_known_data(deployment))
    settle(store)

    points = store.series(deployment, node=None, since=T0, until=T0 + 60 * SECOND, bucket=60 * SECOND)

    # Rounds: 10+1, 30+3, 20+2, 60+6.
    assert len(points) == 1
    assert points[0].avg["cpu_percent"] == (11 + 33 + 22 + 66) / 4
    assert points[0].max["cpu_percent"] == 66.0


def test_series_keeps_to_since_and_until(store: Store, deployment: str) -> None:
    store.write_samples(rounds_of_known_data(deployment))
    settle(store)

    points = store.series(deployment, node="db", since=T0 + 15 * SECOND, until=T0 + 45 * SECOND, bucket=10 * SECOND)

    # Buckets from since: 15-25 (round 15: 3), 25-35 (round 30: 2), 35-45 (nothing; round 45 is until).
    assert [point.time for point in points] == [T0 + 15 * SECOND, T0 + 25 * SECOND, T0 + 35 * SECOND]
    assert [point.max["cpu_percent"] for point in points] == [3.0, 2.0, None]


@pytest.mark.parametrize(
    ("since", "until", "bucket", "complaint"),
    [
        (T0, T0 + 60 * SECOND, datetime.timedelta(0), "longer than zero"),
        (T0, T0 + 60 * SECOND, -SECOND, "longer than zero"),
        (T0, T0, SECOND, "later than since"),
        (T0, T0 + datetime.timedelta(days=30), SECOND, "choose a larger bucket"),
        (T0.replace(tzinfo=None), T0 + 60 * SECOND, SECOND, "time zone"),
    ],
)
def test_series_refuses_a_bad_window(
    store: Store,
    deployment: str,
    since: datetime.datetime,
    until: datetime.datetime,
    bucket: datetime.timedelta,
    complaint: str,
) -> None:
    with pytest.raises(ValidationFailed, match=complaint):
        store.series(deployment, node=None, since=since, until=until, bucket=bucket)


# Latest


def test_latest_sums_each_nodes_containers_of_its_newest_round(store: Store, deployment: str) -> None:
    store.write_samples(rounds_of_known_data(deployment))
    # db's newest round is older than web's: each node has its own.
    store.write_samples([sample(deployment, "web", "web.1", T0 + 105 * SECOND, cpu_percent=7.5, memory_bytes=10)])
    settle(store)

    latest = store.latest(deployment)

    assert sorted(latest) == ["db", "web"]
    assert latest["web"].time == T0 + 105 * SECOND
    assert latest["web"].cpu_percent == 7.5
    assert latest["web"].memory_bytes == 10
    assert latest["db"].time == T0 + 90 * SECOND
    assert latest["db"].cpu_percent == 1.0
    assert latest["db"].memory_bytes is None
    assert store.latest(uuid.uuid4().hex[:24]) == {}


# Search


@pytest.fixture
def varied_lines(store: Store, deployment: str) -> list[Line]:
    lines = [
        line(deployment, "worker started", T0, node="app", level="info"),
        line(deployment, "connection refused by database", T0 + 1 * SECOND, node="app", level="error"),
        line(deployment, "GET /health 200", T0 + 2 * SECOND, node="web", level="debug"),
        line(deployment, "database connection slow", T0 + 3 * SECOND, node="app", level="warning"),
        line(deployment, "out of memory, database gone", T0 + 4 * SECOND, node="db", level="critical"),
        line(deployment, "Connection reset by peer", T0 + 5 * SECOND, node="web", level=""),
    ]
    store.write_lines(lines)
    settle(store)
    return lines


def test_search_finds_lines_holding_every_word(store: Store, deployment: str, varied_lines: list[Line]) -> None:
    assert messages(store, LogQuery(deployment_id=deployment, text="database")) == [
        "out of memory, database gone",
        "database connection slow",
        "connection refused by database",
    ]
    # Words in any order, any case.
    assert messages(store, LogQuery(deployment_id=deployment, text="CONNECTION database")) == [
        "database connection slow",
        "connection refused by database",
    ]
    assert messages(store, LogQuery(deployment_id=deployment, text="nowhere")) == []


def test_search_finds_words_inside_paths_addresses_and_pairs(store: Store, deployment: str) -> None:
    store.write_lines(
        [
            line(deployment, "GET /api/v1/users/42 404", T0),
            line(deployment, "connect to db.internal:5432 refused", T0 + SECOND),
            line(deployment, "user=maria action=login", T0 + 2 * SECOND),
        ]
    )
    settle(store)

    def found(text: str) -> list[str]:
        return messages(store, LogQuery(deployment_id=deployment, text=text))

    assert found("users") == ["GET /api/v1/users/42 404"]
    assert found("/api/v1") == ["GET /api/v1/users/42 404"]
    assert found("5432") == ["connect to db.internal:5432 refused"]
    assert found("maria") == ["user=maria action=login"]
    assert found("user=maria") == ["user=maria action=login"]


def test_search_by_level_keeps_that_level_and_above(store: Store, deployment: str, varied_lines: list[Line]) -> None:
    assert messages(store, LogQuery(deployment_id=deployment, level="warning")) == [
        "out of memory, database gone",
        "database connection slow",
        "connection refused by database",
    ]
    assert messages(store, LogQuery(deployment_id=deployment, level="critical")) == ["out of memory, database gone"]
    # Debug and above: every line whose level is known.
    assert len(messages(store, LogQuery(deployment_id=deployment, level="debug"))) == 5


def test_search_by_node_and_time(store: Store, deployment: str, varied_lines: list[Line]) -> None:
    assert messages(store, LogQuery(deployment_id=deployment, node="web")) == [
        "Connection reset by peer",
        "GET /health 200",
    ]
    window = LogQuery(deployment_id=deployment, since=T0 + 1 * SECOND, until=T0 + 3 * SECOND)
    assert messages(store, window) == ["GET /health 200", "connection refused by database"]
    combined = LogQuery(deployment_id=deployment, text="connection", node="app", level="error", since=T0)
    assert messages(store, combined) == ["connection refused by database"]


def test_pages_cover_every_line_once_even_when_times_tie(store: Store, deployment: str) -> None:
    # 250 lines over 25 distinct times: pages of 40 must split groups of equal time cleanly.
    written = [line(deployment, f"line {index}", T0 + (index // 10) * SECOND) for index in range(250)]
    store.write_lines(written)
    settle(store)

    seen: list[str] = []
    before = None
    pages = 0
    while True:
        page = store.search_lines(LogQuery(deployment_id=deployment, limit=40, before=before))
        pages += 1
        seen.extend(found.message for found in page.lines)
        if page.next_before is None:
            break
        before = page.next_before

    assert pages == 7
    assert len(seen) == len(set(seen)) == 250
    times = [int(message.split()[1]) // 10 for message in seen]
    assert times == sorted(times, reverse=True)
    # Within one time, the line written last comes first, as it does on the first page.
    first_page = messages(store, LogQuery(deployment_id=deployment, limit=10))
    assert first_page == [f"line {index}" for index in range(249, 239, -1)]


def test_a_page_cursor_keeps_the_filters_it_is_used_with(store: Store, deployment: str) -> None:
    store.write_lines(
        [line(deployment, f"{'error' if index % 3 == 0 else 'ok'} {index}", T0 + index * SECOND) for index in range(30)]
    )
    settle(store)
    first = store.search_lines(LogQuery(deployment_id=deployment, text="error", limit=4))
    second = store.search_lines(LogQuery(deployment_id=deployment, text="error", limit=4, before=first.next_before))

    assert [found.message for found in first.lines] == ["error 27", "error 24", "error 21", "error 18"]
    assert [found.message for found in second.lines] == ["error 15", "error 12", "error 9", "error 6"]


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        (LogQuery(deployment_id="x", limit=0), "limit must be between 1 and 1000"),
        (LogQuery(deployment_id="x", limit=1001), "limit must be between 1 and 1000"),
        (LogQuery(deployment_id="x", level="loud"), "level 'loud' is not one of"),
        (LogQuery(deployment_id="x", before="not-a-cursor"), "cursor is not valid"),
        (LogQuery(deployment_id="x", before="WzEsMiwzXQ"), "cursor is not valid"),  # [1,2,3]
        (LogQuery(deployment_id="x", before="WzEsMl0"), "cursor is not valid"),  # [1,2]
        (LogQuery(deployment_id="x", since=T0, until=T0), "later than since"),
        (LogQuery(deployment_id="x", since=T0.replace(tzinfo=None)), "time zone"),
    ],
)
def test_search_refuses_bad_queries(store: Store, query: LogQuery, complaint: str) -> None:
    with pytest.raises(ValidationFailed, match=complaint):
        store.search_lines(query)


# Isolation


def test_one_deployments_queries_never_return_anothers_data(store: Store) -> None:
    ours, theirs = uuid.uuid4().hex[:24], uuid.uuid4().hex[:24]
    for deployment in (ours, theirs):
        store.write_lines([line(deployment, f"secret of {deployment}", T0 + index * SECOND) for index in range(3)])
        store.write_samples([sample(deployment, "web", "web.1", T0, cpu_percent=50.0)])
    store.write_lines([line("", "platform event: secret rotated", T0)])
    settle(store)

    for text in ("", "secret", theirs):
        found = store.search_lines(LogQuery(deployment_id=ours, text=text)).lines
        assert {found_line.deployment_id for found_line in found} <= {ours}
    assert len(store.search_lines(LogQuery(deployment_id=ours)).lines) == 3
    assert messages(store, LogQuery(deployment_id="", text="secret")) == ["platform event: secret rotated"]
    # Operators search every deployment at once.
    everyone = {found.deployment_id for found in store.search_lines(LogQuery(deployment_id=None, text="secret")).lines}
    assert {ours, theirs, ""} <= everyone
    points = store.series(ours, node=None, since=T0, until=T0 + 60 * SECOND, bucket=60 * SECOND)
    assert points[0].max["cpu_percent"] == 50.0
    assert set(store.latest(ours)) == {"web"}


# Retention


def test_purge_removes_what_is_older_than_the_cutoff(store: Store, deployment: str) -> None:
    old, recent = T0 - datetime.timedelta(days=10), T0
    store.write_lines([line(deployment, f"old {index}", old + index * SECOND) for index in range(4)])
    store.write_lines([line(deployment, f"recent {index}", recent + index * SECOND) for index in range(3)])
    store.write_samples([sample(deployment, "web", "web.1", old, cpu_percent=1.0)])
    store.write_samples([sample(deployment, "web", "web.1", recent, cpu_percent=2.0)])
    settle(store)

    removed = store.purge(older_than=T0 - datetime.timedelta(days=2))
    settle(store)

    assert removed == 5
    assert messages(store, LogQuery(deployment_id=deployment)) == ["recent 2", "recent 1", "recent 0"]
    old_points = store.series(deployment, node="web", since=old, until=old + 60 * SECOND, bucket=60 * SECOND)
    assert old_points[0].max["cpu_percent"] is None
    assert store.latest(deployment)["web"].cpu_percent == 2.0
    assert store.purge(older_than=T0 - datetime.timedelta(days=2)) == 0
    with pytest.raises(ValidationFailed):
        store.purge(older_than=T0.replace(tzinfo=None))


def test_the_database_purges_in_batches_until_nothing_old_is_left(
    db: None, deployment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitoring.store import database

    monkeypatch.setattr(database, "PURGE_BATCH", 3)
    store = DatabaseStore()
    store.write_lines([line(deployment, f"old {index}", T0 - index * SECOND) for index in range(10)])
    store.write_lines([line(deployment, "new", T0 + SECOND)])

    assert store.purge(older_than=T0 + SECOND) == 10
    assert messages(store, LogQuery(deployment_id=deployment)) == ["new"]


# PostgreSQL specifics


@pytest.mark.django_db
def test_searches_on_postgresql_use_the_store_indexes(deployment: str) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the store's search indexes exist on PostgreSQL only")
    store = DatabaseStore()
    store.write_lines(
        [line(deployment, f"routine request {index} served", T0 + index * SECOND / 1000) for index in range(20_000)]
        + [line(deployment, "disk quota exceeded", T0 + 30 * SECOND, level="error")]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE monitoring_logline")

    from monitoring.store.database import lines_query

    # The querysets search_lines runs, as PostgreSQL plans them.
    by_text = lines_query(LogQuery(deployment_id=deployment, text="quota"))[:101]
    by_level = lines_query(LogQuery(deployment_id=deployment, level="error"))[:101]

    assert "log_deployment_message_search" in by_text.explain()
    assert "log_deployment_level_time" in by_level.explain()
    assert messages(store, LogQuery(deployment_id=deployment, text="quota")) == ["disk quota exceeded"]
    assert messages(store, LogQuery(deployment_id=deployment, level="error")) == ["disk quota exceeded"]


def test_lines_with_a_nul_byte_are_kept(db: None, deployment: str) -> None:
    store = DatabaseStore()
    store.write_lines([line(deployment, "binary\x00junk", T0)])

    assert messages(store, LogQuery(deployment_id=deployment)) == ["binary\ufffdjunk"]


# SQLite, the embedded default


SQLITE_SCRIPT = textwrap.dedent(
    """
    import datetime, json, django
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    call_command("migrate", verbosity=0)
    from monitoring.store import Line, LogQuery, Sample, get_store

    store = get_store()
    t0 = datetime.datetime(2026, 3, 2, 10, 0, tzinfo=datetime.UTC)
    s = datetime.timedelta(seconds=1)
    store.write_lines([Line(time=t0 + (i // 3) * s, message=f"line {i} of {'error' if i % 2 else 'info'}",
                            deployment_id="d1", level="error" if i % 2 else "info") for i in range(20)])
    store.write_lines([Line(time=t0, message="other line of error", deployment_id="d2", level="error")])
    store.write_samples([Sample(time=t0 + r * 15 * s, deployment_id="d1", node="web", container=c, cpu_percent=v)
                         for r, c, v in [(0, "a", 1.0), (0, "b", 3.0), (1, "a", 10.0), (2, "a", 7.0)]])
    pages, before = [], None
    while True:
        page = store.search_lines(LogQuery(deployment_id="d1", text="ERROR", limit=3, before=before))
        pages.append([line.message for line in page.lines])
        if page.next_before is None:
            break
        before = page.next_before
    points = store.series("d1", node="web", since=t0, until=t0 + 60 * s, bucket=30 * s)
    latest = store.latest("d1")["web"]
    removed = store.purge(older_than=t0 + 5 * s)
    print(json.dumps({
        "vendor": connection.vendor,
        "store": store.name,
        "pages": pages,
        "avg": [p.avg["cpu_percent"] for p in points],
        "max": [p.max["cpu_percent"] for p in points],
        "latest": [latest.time.isoformat(), latest.cpu_percent],
        "removed": removed,
    }))
    """
)


def test_the_database_store_works_on_sqlite(tmp_path: Path) -> None:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "ELASTICSEARCH_URL", "DJANGO_SETTINGS_MODULE")
    }
    environment.update(AGORA_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL="")
    completed = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])

    assert result["vendor"] == "sqlite"
    assert result["store"] == "database"
    expected = [f"line {i} of error" for i in range(19, 0, -2)]
    assert [message for page in result["pages"] for message in page] == expected
    assert [len(page) for page in result["pages"]] == [3, 3, 3, 1]
    assert result["avg"] == [(4.0 + 10.0) / 2, 7.0]
    assert result["max"] == [10.0, 7.0]
    assert result["latest"] == ["2026-03-02T10:00:30+00:00", 7.0]
    # d1's lines of the first 5 seconds (i // 3 < 5: 15), d2's line and the two samples of t0.
    assert result["removed"] == 18


# Choosing the backend


def test_get_store_picks_elasticsearch_only_when_a_url_is_set(settings: Any) -> None:
    from monitoring.store import get_store
    from monitoring.store.elastic import ElasticStore

    get_store.cache_clear()
    try:
        settings.ELASTICSEARCH_URL = ""
        assert isinstance(get_store(), DatabaseStore)
        assert get_store() is get_store()
        get_store.cache_clear()
        settings.ELASTICSEARCH_URL = "http://elasticsearch.invalid:9200"
        chosen = get_store()
        # Built without a round trip: the client is made on first use.
        assert isinstance(chosen, ElasticStore)
        assert chosen.url == "http://elasticsearch.invalid:9200"
    finally:
        get_store.cache_clear()


def test_elasticsearch_days_and_times_are_utc() -> None:
    from monitoring.store.elastic import ElasticStore, _time_of

    store = ElasticStore("http://elasticsearch.invalid:9200", prefix="agora")
    late_in_madrid = datetime.datetime(2026, 3, 3, 0, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))

    assert store.index_name("logs", late_in_madrid) == "agora-logs-2026.03.02"
    assert _time_of("2026-03-02T23:30:00.123456789Z") == datetime.datetime(
        2026, 3, 2, 23, 30, 0, 123456, tzinfo=datetime.UTC
    )
    assert _time_of(1772494200000) == datetime.datetime(2026, 3, 2, 23, 30, tzinfo=datetime.UTC)
