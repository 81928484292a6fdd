"""The Elasticsearch store's ids: a log line written again (a batch retried after its cursor could not be
committed, a collector reading again from an older cursor, a Fluentd chunk resent) overwrites itself
instead of being stored twice; distinct lines, even the same text in the same second, stay distinct.

No Elasticsearch server runs on this machine, so the store talks, through the official client over
HTTP, to a recorder: a small server that answers the two requests a write makes (index templates and
_bulk) as Elasticsearch does and keeps the documents by index and id, as an index does, so that "how
many lines are stored" has an answer. Docker and PostgreSQL are the real ones.
"""

from __future__ import annotations

import collections
import datetime
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection

from crane.models import Target
from monitoring.collector import LogFollowers, collect_round
from monitoring.fluentd.ingest import Peer, store_frame
from monitoring.fluentd.protocol import Frame, Limits, Mode, Options
from monitoring.models import ForwardChunk, LogCursor, LogLine
from monitoring.store import Line, get_store
from monitoring.store.elastic import ElasticStore
from tests.monitoring import collector_fixtures
from tests.monitoring.collector_fixtures import Deployments, eventually, service

engine = collector_fixtures.engine
monitored = collector_fixtures.monitored
followers = collector_fixtures.followers

T0 = datetime.datetime(2026, 3, 2, 10, 0, tzinfo=datetime.UTC)


# --- the recorder -------------------------------------------------------------------------------------


@dataclass
class Recorder:
    """What reached "Elasticsearch": every bulk request's (index, id) pairs, and the documents by index and id."""

    url: str = ""
    bulks: list[list[tuple[str, str]]] = field(default_factory=list)
    documents: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def logs(self) -> dict[tuple[str, str], dict[str, Any]]:
        with self.lock:
            return {key: source for key, source in self.documents.items() if key[0].startswith("agora-logs-")}

    def log_bulks(self) -> list[list[str]]:
        with self.lock:
            return [[i for index, i in bulk if index.startswith("agora-logs-")] for bulk in self.bulks]

    def messages(self, deployment_id: str) -> list[str]:
        return sorted(s["message"] for s in self.logs().values() if s["deployment_id"] == deployment_id)


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client expects

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.elasticsearch+json;compatible-with=9")
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_PUT(self) -> None:
            if self.path.startswith("/_index_template/"):
                self._body()
                self._answer(200, {"acknowledged": True})
            else:
                self._bulk()

        def do_POST(self) -> None:
            self._bulk()

        def _bulk(self) -> None:
            body = self._body()
            if not self.path.startswith("/_bulk"):
                self._answer(404, {"error": {"type": "not_supported_by_the_recorder"}, "status": 404})
                return
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            items, written = [], []
            with recorder.lock:
                for action, source in zip(lines[::2], lines[1::2], strict=True):
                    ((op, meta),) = action.items()
                    index, doc_id = meta["_index"], meta.get("_id") or uuid.uuid4().hex
                    exists = (index, doc_id) in recorder.documents
                    if op == "create" and exists:
                        items.append({op: {"_index": index, "_id": doc_id, "status": 409}})
                        continue
                    recorder.documents[(index, doc_id)] = source
                    written.append((index, doc_id))
                    result = "updated" if exists else "created"
                    items.append(
                        {op: {"_index": index, "_id": doc_id, "status": 200 if exists else 201, "result": result}}
                    )
                recorder.bulks.append(written)
            self._answer(
                200, {"took": 1, "errors": any(i[next(iter(i))]["status"] >= 300 for i in items), "items": items}
            )

    return Handler


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    made = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(made))
    made.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield made
    server.shutdown()
    server.server_close()


@pytest.fixture
def elastic(recorder: Recorder, settings: Any) -> Iterator[Recorder]:
    """get_store() is the Elasticsearch store, talking to the recorder, for this test."""
    settings.ELASTICSEARCH_URL = recorder.url
    get_store.cache_clear()
    assert isinstance(get_store(), ElasticStore)
    yield recorder
    get_store.cache_clear()


# --- the store ------------------------------------------------------------------------------------------


def test_keyed_lines_written_again_keep_their_ids_and_distinct_keys_stay_distinct(recorder: Recorder) -> None:
    store = ElasticStore(recorder.url)
    # The same text three times in the same second from one container: three lines.
    batch = [
        Line(
            time=T0,
            message="same",
            deployment_id="d1",
            node="web",
            container="web.1",
            key=f"c1/{int(T0.timestamp())}/{place}",
        )
        for place in range(3)
    ]
    assert store.write_lines(batch) == 3
    assert store.write_lines(batch) == 3  # the retry of a batch whose cursor was not committed

    first, again = recorder.log_bulks()
    assert first == again and len(set(first)) == 3
    assert sorted(s["message"] for s in recorder.logs().values()) == ["same", "same", "same"]


def test_lines_without_a_key_are_never_taken_for_one_another(recorder: Recorder) -> None:
    store = ElasticStore(recorder.url)
    line = Line(time=T0, message="same", deployment_id="d1", source="platform")
    store.write_lines([line, line])
    store.write_lines([line])
    assert len(recorder.logs()) == 3


# --- the collector: a retry, and a re-read from an older cursor -----------------------------------------

# The same text on both streams, several times in one second, then in the next: every line counts.
PRINTS = "echo same; echo same; echo same >&2; echo same; sleep 1.2; echo same; echo other >&2; exec sleep 600"
PRINTED = ["other", "same", "same", "same", "same", "same"]


class FailingCommit:
    """Makes the next commit that writes a row of `table` fail, once, in PostgreSQL itself: a deferred
    constraint trigger raises at COMMIT, after the lines went to the store in the same transaction.
    (Names here are the table's and this test's own, never input: formatting them into SQL is safe.)"""

    def __init__(self, table: str) -> None:
        self.table = table
        self.name = f"fail_once_{uuid.uuid4().hex[:8]}"
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SEQUENCE {self.name}")
            cursor.execute(
                f"""CREATE FUNCTION {self.name}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF nextval('{self.name}') = 1 THEN
                        RAISE EXCEPTION 'the commit fails (test)';
                    END IF;
                    RETURN NULL;
                END $$"""
            )
            cursor.execute(
                f"CREATE CONSTRAINT TRIGGER {self.name} AFTER INSERT OR UPDATE ON {table} "
                f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {self.name}()"
            )

    def fired(self) -> int:
        """How many writes reached their commit: the first failed, the others went through."""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT last_value, is_called FROM {self.name}")  # noqa: S608 - see the class
            value, called = cursor.fetchone()
        return int(value) if called else 0

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS {self.name} ON {self.table}")
            cursor.execute(f"DROP FUNCTION IF EXISTS {self.name}()")
            cursor.execute(f"DROP SEQUENCE IF EXISTS {self.name}")


@pytest.fixture
def failing_cursor_commit(transactional_db: None) -> Iterator[FailingCommit]:
    made = FailingCommit(LogCursor._meta.db_table)
    yield made
    made.drop()


def _read(engine: Target, followers: list[LogFollowers], done: Any) -> None:
    """One collector's life: follow the target's containers until `done()`, then stop."""
    follower = LogFollowers(flush_seconds=0.2)
    followers.append(follower)
    follower.sync(engine, collect_round(engine, interval=1).containers)
    eventually(lambda: follower.flush() and done(), "the lines stored", timeout=30, pause=0.2)
    assert follower.stop()


@pytest.mark.docker
def test_a_batch_retried_after_its_cursor_commit_failed_is_stored_once_in_elasticsearch(
    engine: Target,
    monitored: Deployments,
    followers: list[LogFollowers],
    failing_cursor_commit: FailingCommit,
    elastic: Recorder,
) -> None:
    deployment = monitored.create(engine, service("app", PRINTS))
    _read(
        engine, followers, lambda: len(elastic.messages(deployment.pk)) >= len(PRINTED) and LogCursor.objects.exists()
    )

    assert failing_cursor_commit.fired() >= 2  # the first batch's commit failed; the writer tried again
    bulks = [bulk for bulk in elastic.log_bulks() if bulk]
    assert len(bulks) >= 2 and set(bulks[0]) <= {i for bulk in bulks[1:] for i in bulk}
    assert elastic.messages(deployment.pk) == PRINTED


@pytest.mark.docker
def test_the_database_store_keeps_lines_and_cursor_in_one_transaction_so_a_retry_is_stored_once(
    engine: Target, monitored: Deployments, followers: list[LogFollowers], failing_cursor_commit: FailingCommit
) -> None:
    """Why the database store needs no ids: the failed commit took the lines with it."""
    get_store.cache_clear()
    deployment = monitored.create(engine, service("app", PRINTS))

    def stored() -> bool:
        return sorted(LogLine.objects.filter(deployment_id=deployment.pk).values_list("message", flat=True)) == PRINTED

    _read(engine, followers, lambda: stored() and LogCursor.objects.exists())
    assert failing_cursor_commit.fired() >= 2
    assert stored()


@pytest.mark.docker
def test_a_collector_reading_again_from_an_older_cursor_overwrites_what_it_stored(
    engine: Target, monitored: Deployments, followers: list[LogFollowers], elastic: Recorder
) -> None:
    deployment = monitored.create(engine, service("app", PRINTS))
    _read(engine, followers, lambda: elastic.messages(deployment.pk) == PRINTED)
    ids = {doc_id for _index, doc_id in elastic.logs()}
    assert len(ids) == len(PRINTED)

    # Collectors that died after their lines reached Elasticsearch but before their cursor was committed:
    # the next one reads again from where the cursor still is. Here: before everything, then after the
    # first line (the cursor (S, 1), S the first line's whole second).
    def written_since(bulks: int) -> set[str]:
        return {doc_id for bulk in elastic.log_bulks()[bulks:] for doc_id in bulk}

    LogCursor.objects.filter(deployment_id=deployment.pk).update(last_time=None, lines_at_last_time=0)
    bulks = len(elastic.log_bulks())
    _read(engine, followers, lambda: len(written_since(bulks)) == len(PRINTED))
    assert written_since(bulks) == ids
    assert elastic.messages(deployment.pk) == PRINTED

    first = min(datetime.datetime.fromisoformat(source["time"]) for source in elastic.logs().values())
    second = first.replace(microsecond=0)
    LogCursor.objects.filter(deployment_id=deployment.pk).update(last_time=second, lines_at_last_time=1)
    bulks = len(elastic.log_bulks())
    _read(engine, followers, lambda: len(written_since(bulks)) == len(PRINTED) - 1)
    assert written_since(bulks) < ids
    assert elastic.messages(deployment.pk) == PRINTED


# --- the Fluentd receiver: a chunk resent after its commit failed ---------------------------------------


@pytest.fixture
def failing_chunk_commit(transactional_db: None) -> Iterator[FailingCommit]:
    made = FailingCommit(ForwardChunk._meta.db_table)
    yield made
    made.drop()


def test_a_fluentd_chunk_resent_after_its_commit_failed_is_stored_once_in_elasticsearch(
    failing_chunk_commit: FailingCommit, elastic: Recorder
) -> None:
    second = int(T0.timestamp())
    entries = [[second, {"log": "same", "container_name": "/web"}] for _ in range(3)]
    frame = Frame(tag="docker.web", mode=Mode.FORWARD, options=Options(chunk="chunk-1"), body=entries)
    peer = Peer(address="127.0.0.1", trusted=True)
    limits = Limits(max_frame_bytes=1024 * 1024, max_decompressed_bytes=1024 * 1024)

    with pytest.raises(Exception, match="the commit fails"):
        store_frame(frame, peer, limits)
    assert store_frame(frame, peer, limits).lines == 3  # the client resends: no ack came

    first, again = elastic.log_bulks()
    assert first == again and len(set(first)) == 3
    assert [s["message"] for s in elastic.logs().values()] == ["same", "same", "same"]
    # Another chunk with the same lines is other lines.
    other = Frame(tag="docker.web", mode=Mode.FORWARD, options=Options(chunk="chunk-2"), body=entries)
    assert store_frame(other, peer, limits).lines == 3
    assert collections.Counter(s["message"] for s in elastic.logs().values()) == {"same": 6}
