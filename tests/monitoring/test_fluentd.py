"""The Fluentd forward receiver, end to end: a real server on a free port writing to the test
database, real clients (fluent-logger, raw msgpack sockets speaking each mode as fluentd and
fluent-bit send it, Docker's fluentd log driver), hostile ones next to good ones."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import hashlib
import io
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgpack  # type: ignore[import-untyped]
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from fluent import sender  # type: ignore[import-untyped]

from crane.models import Target
from monitoring.fluentd import ingest
from monitoring.fluentd.protocol import (
    Entry,
    Limits,
    Mode,
    ProtocolError,
    gunzip_members,
    parse_frame,
    parse_ping,
)
from monitoring.fluentd.records import line_of
from monitoring.fluentd.server import Receiver, ReceiverConfig, parse_bind, parse_trusted
from monitoring.models import ForwardChunk, ForwardKey, LogLine
from orchestrator.models import Deployment
from tests.crane.conftest import BUSYBOX, needs_docker

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = parse_trusted(["127.0.0.0/8", "::1/128"])
NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, *, timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(0.1)


def event_time(seconds: int, nanoseconds: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, struct.pack(">II", seconds, nanoseconds))


def packed(*entries: Any) -> bytes:
    return b"".join(msgpack.packb(entry, use_bin_type=True) for entry in entries)


# --- a receiver in a thread, against the test database --------------------------------------------


@contextmanager
def serving(**overrides: Any) -> Iterator[Receiver]:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "limits": Limits(max_frame_bytes=1024 * 1024, max_decompressed_bytes=4 * 1024 * 1024),
        "trusted": LOOPBACK,
        "hostname": "agora-receiver",
        "handshake_timeout": 3.0,
        "stall_timeout": 1.0,
        "message_timeout": 5.0,
    }
    values.update(overrides)
    receiver = Receiver(ReceiverConfig(**values))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fluentd-test-loop", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(receiver.start(), loop).result(10)
        yield receiver
    finally:
        asyncio.run_coroutine_threadsafe(receiver.close(grace=5), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class Client:
    """A raw forward-protocol client: what fluentd, fluent-bit or a logger library puts on the wire."""

    def __init__(self, port: int, *, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.unpacker = msgpack.Unpacker(raw=False)

    def send(self, message: Any, *, bin_type: bool = True) -> None:
        self.sock.sendall(msgpack.packb(message, use_bin_type=bin_type))

    def receive(self) -> Any:
        while True:
            for message in self.unpacker:
                return message
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the receiver closed the connection")
            self.unpacker.feed(data)

    def closed_by_receiver(self) -> bool:
        """True once the receiver has closed the connection (anything it still sends is read past)."""
        try:
            while data := self.sock.recv(65536):
                self.unpacker.feed(data)
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()


def handshake(client: Client, *, username: str, shared_key: str, password: str | None = None) -> list[Any]:
    # password None: the shared key again, as Agora's documentation tells fluentd users to set it.
    """The client's side of HELO/PING/PONG, computed here independently of the receiver's code."""
    kind, options = client.receive()
    assert kind == "HELO"
    nonce, auth_salt = options["nonce"], options["auth"]
    assert isinstance(nonce, bytes) and len(nonce) == 16 and auth_salt
    salt = os.urandom(16)
    digest = hashlib.sha512(salt + b"client.example" + nonce + shared_key.encode()).hexdigest()
    password = shared_key if password is None else password
    password_hex = hashlib.sha512(auth_salt + username.encode() + password.encode()).hexdigest()
    # fluent-bit sends the salt as a str of raw bytes: that is what arrives here too.
    client.sock.sendall(
        msgpack.packb(["PING", "client.example", salt, digest, username, password_hex], use_bin_type=False)
    )
    answer: list[Any] = client.receive()
    if answer[1]:
        _, _, _, server_host, server_digest = answer
        expected = hashlib.sha512(salt + server_host.encode() + nonce + shared_key.encode()).hexdigest()
        assert server_digest == expected, "the receiver does not prove it knows the key"
    return answer


# --- data -------------------------------------------------------------------------------------------


@pytest.fixture
def target(transactional_db: None) -> Target:
    return Target.objects.create(name=f"fluentd-{uuid.uuid4().hex[:8]}", public_host="127.0.0.1")


def make_deployment(target: Target, owner: str) -> Deployment:
    return Deployment.objects.create(
        owner=owner, target=target, template=b"", template_filename="t.yaml", template_sha256="0" * 64
    )


@pytest.fixture
def ours(target: Target) -> Deployment:
    return make_deployment(target, "barcelona")


@pytest.fixture
def theirs(target: Target) -> Deployment:
    return make_deployment(target, "madrid")


def lines(**filters: Any) -> list[LogLine]:
    return list(LogLine.objects.filter(**filters).order_by("time", "id"))


# --- pure protocol ------------------------------------------------------------------------------------

LIMITS = Limits(max_frame_bytes=64 * 1024, max_decompressed_bytes=256 * 1024)


def test_every_mode_yields_its_entries_with_nanosecond_times() -> None:
    entries = packed([event_time(1_700_000_000, 123_456_789), {"log": "a"}], [1_700_000_001, {"log": "b"}])
    two_members = gzip.compress(entries[:7]) + gzip.compress(entries[7:])
    frames = [
        ["app", 1_700_000_000, {"log": "a"}],
        ["app", [[1_700_000_000.5, {"log": "a"}], [[1_700_000_001, {"meta": 1}], {"log": "b"}]]],
        ["app", entries],
        ["app", entries.decode("utf-8", "surrogateescape"), {"size": 2}],  # fluentd: a str of raw bytes
        ["app", two_members, {"compressed": "gzip"}],
    ]
    modes = []
    for message in frames:
        frame = parse_frame(message)
        assert frame is not None
        modes.append(frame.mode)
        got = list(frame.entries(LIMITS, now=NOW))
        assert [entry.record.get("log") for entry in got][:2] == ["a", "b"][: len(got)]
    assert modes == [
        Mode.MESSAGE,
        Mode.FORWARD,
        Mode.PACKED_FORWARD,
        Mode.PACKED_FORWARD,
        Mode.COMPRESSED_PACKED_FORWARD,
    ]
    first = next(parse_frame(frames[2]).entries(LIMITS, now=NOW))  # type: ignore[union-attr]
    assert first.time == datetime.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("just a string", "an event message is an array"),
        (["", 1, {}], "the tag must be a non-empty string"),
        (["app", 1, "not a map"], "the record must be a map"),
        (["app", [[1, {}], "x"]], "entry 1 must be an array"),
        (["app", [["yesterday", {}]]], "time must be an integer, a float or an EventTime"),
        (["app", 1, {}, {"compressed": "zstd"}], "compression 'zstd' is not supported"),
        (["app", 1, {}, {"chunk": 5}], "the chunk option must be a UTF-8 string"),
        (["app", [[-5, {}]]], "out of range"),
        (["app", b"\x92\x01", {}], "end in the middle of entry 0"),
        (["app", b"not gzip", {"compressed": "gzip"}], "not valid gzip data"),
        (["app", gzip.compress(packed([1, {}]))[:-4], {"compressed": "gzip"}], "in the middle of a gzip member"),
        (["app", packed([msgpack.ExtType(0, b"123"), {}])], "an EventTime (ext type 0) is 8 bytes long"),
    ],
)
def test_malformed_messages_get_a_clear_error(message: Any, error: str) -> None:
    with pytest.raises(ProtocolError, match=error.replace("(", r"\(").replace(")", r"\)")):
        frame = parse_frame(message)
        assert frame is not None
        list(frame.entries(LIMITS, now=NOW))


def test_records_become_lines_whatever_their_shape() -> None:
    deep: Any = "bottom"
    for _ in range(1000):
        deep = [deep]
    entry = Entry(time=NOW, record={"nested": deep})
    assert line_of(entry, tag="app", deployment_id="").message == "(a record nested too deeply to show)"
    odd = {b"raw": b"\xff", "text": "caf\udce9", "level": "FATAL", "agora.node": "n" * 100}
    line = line_of(Entry(time=NOW, record=odd), tag="t" * 40, deployment_id="d1")
    assert line.message == '{"b\'raw\'": "\ufffd", "level": "FATAL", "text": "caf\ufffd"}'
    assert (line.level, len(line.node), len(line.stream)) == ("critical", 64, 16)


def test_decompression_stops_at_the_limit_whatever_the_compressed_size() -> None:
    bomb = gzip.compress(b"\x00" * (10 * 1024 * 1024))  # about 10 KB
    assert len(bomb) < 20_000
    with pytest.raises(ProtocolError, match="decompress to more than 262144 bytes"):
        for _ in gunzip_members(bomb, LIMITS.max_decompressed_bytes):
            pass


def test_a_ping_must_have_the_handshake_shape() -> None:
    with pytest.raises(ProtocolError, match="expected the handshake's PING"):
        parse_ping(["app", 1, {}])
    with pytest.raises(ProtocolError, match="username must be a string"):
        parse_ping(["PING", "host", b"salt", "digest", 5, ""])


def test_settings_are_checked_at_start() -> None:
    assert parse_bind("10.0.0.1:24224") == ("10.0.0.1", 24224)
    assert parse_bind("[::1]:24224") == ("::1", 24224)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_bind("24224")
    with pytest.raises(ValueError, match="is not an address or a network"):
        parse_trusted(["localhost"])


# --- the server ---------------------------------------------------------------------------------------


def test_fluent_logger_events_are_stored_under_the_labelled_deployment(ours: Deployment) -> None:
    with serving() as receiver:
        client = sender.FluentSender("app", host="127.0.0.1", port=receiver.port, nanosecond_precision=True)
        try:
            assert client.emit_with_time(
                "web",
                sender.EventTime(1_767_322_800, 250_000_000),
                {"message": "GET / 200", "level": "WARN", "agora.deployment": ours.pk, "agora.node": "web"},
            ), client.last_error
            assert client.emit("web", {"log": "no deployment label\n"})
        finally:
            client.close()
        stored = eventually(lambda: lines() if len(lines()) == 2 else None, "both lines stored")
    first, second = stored
    assert (first.deployment_id, first.node, first.source, first.stream, first.level, first.message) == (
        ours.pk,
        "web",
        "fluentd",
        "app.web",
        "warning",
        "GET / 200",
    )
    assert first.time == datetime.datetime(2026, 1, 2, 3, 0, 0, 250000, tzinfo=datetime.UTC)
    assert (second.deployment_id, second.message) == ("", "no deployment label")


def test_each_mode_is_acknowledged_only_once_its_lines_are_committed(ours: Deployment) -> None:
    record = {"agora.deployment": ours.pk}
    entries = packed(
        [event_time(1_767_322_800, 1_000), {**record, "log": "packed 1"}],
        [1_767_322_801, {**record, "log": "packed 2"}],
    )
    messages: list[tuple[Any, bool]] = [
        (["app", 1_767_322_800, {**record, "log": "message"}, {"chunk": "c-message"}], True),
        (["app", [[1_767_322_800, {**record, "log": "forward"}]], {"chunk": "c-forward"}], True),
        (["app", entries, {"chunk": "c-packed-bin", "size": 2}], True),
        (["app", entries, {"chunk": "c-packed-str", "size": 2}], False),  # fluentd's str
        (
            ["app", gzip.compress(entries[:9]) + gzip.compress(entries[9:]), {"chunk": "c-gzip", "compressed": "gzip"}],
            True,
        ),
    ]
    expected = 0
    with serving() as receiver:
        client = Client(receiver.port)
        for message, bin_type in messages:
            client.send(message, bin_type=bin_type)
            answer = client.receive()
            expected += 1 if isinstance(message[1], int | list) else 2
            assert answer == {"ack": message[-1]["chunk"]}
            # The ack came: the lines are committed already, visible to this other connection.
            assert LogLine.objects.filter(deployment_id=ours.pk).count() == expected
        client.close()
    assert [line.message for line in lines()] == [
        "message",
        "forward",
        "packed 1",
        "packed 1",
        "packed 1",
        "packed 2",
        "packed 2",
        "packed 2",
    ]
    assert ForwardChunk.objects.count() == 5


def test_a_resent_chunk_is_acknowledged_but_stored_once(ours: Deployment) -> None:
    message = ["app", [[1_767_322_800, {"log": "once", "agora.deployment": ours.pk}]], {"chunk": "QUJDREVGR0g="}]
    with serving() as receiver:
        for _ in range(3):  # the ack got lost: the client reconnects and sends the chunk again
            client = Client(receiver.port)
            client.send(message)
            assert client.receive() == {"ack": "QUJDREVGR0g="}
            client.close()
    assert [line.message for line in lines()] == ["once"]


def test_fluent_bit_metrics_are_acknowledged_but_not_stored(ours: Deployment) -> None:
    metrics = packed([1_767_322_800, {"cpu": 0.5}])
    with serving() as receiver:
        client = Client(receiver.port)
        client.send(["fluentbit_metrics", metrics, {"chunk": "m1", "fluent_signal": 1}])
        assert client.receive() == {"ack": "m1"}
        client.close()
    assert LogLine.objects.count() == 0


def test_handshake_binds_the_connection_to_the_named_deployment(ours: Deployment, theirs: Deployment) -> None:
    key = ingest.forward_key_issue(owner="barcelona")
    with serving(trusted=()) as receiver:
        client = Client(receiver.port)
        answer = handshake(client, username=ours.pk, shared_key=key)
        assert answer[:3] == ["PONG", True, ""]
        assert answer[3] == "agora-receiver"
        # The record claims another owner's deployment: the connection's, proven one wins.
        client.send(["app", 1_767_322_800, {"log": "mine", "agora.deployment": theirs.pk}, {"chunk": "c1"}])
        assert client.receive() == {"ack": "c1"}
        # Nor can it pass its lines off as the platform's own.
        client.send(["agora.platform", 1_767_322_801, {"message": "I am Agora"}, {"chunk": "c2"}])
        assert client.receive() == {"ack": "c2"}
        client.close()
    assert [(line.deployment_id, line.source, line.message) for line in lines()] == [
        (ours.pk, "fluentd", "mine"),
        (ours.pk, "fluentd", "I am Agora"),
    ]


def test_the_password_may_be_left_out(ours: Deployment) -> None:
    key = ingest.forward_key_issue(owner="barcelona")
    with serving(trusted=()) as receiver:
        client = Client(receiver.port)
        assert handshake(client, username=ours.pk, shared_key=key, password="")[1] is True  # fluent-bit, no Password
        client.close()


@pytest.mark.parametrize(
    "case", ["wrong key", "another owner's deployment", "wrong password", "no such deployment", "not a deployment id"]
)
def test_handshake_refusals_store_nothing(case: str, ours: Deployment, theirs: Deployment) -> None:
    key = ingest.forward_key_issue(owner="barcelona")
    ingest.forward_key_issue(owner="madrid")
    username, shared_key, password = ours.pk, key, None
    if case == "wrong key":
        shared_key = "not-the-key"
    elif case == "another owner's deployment":
        username = theirs.pk  # barcelona's key cannot ship madrid's logs
    elif case == "wrong password":
        password = "something else"
    elif case == "no such deployment":
        username = "dnope"
    else:
        username = "x" * 500
    with serving(trusted=()) as receiver:
        client = Client(receiver.port)
        answer = handshake(client, username=username, shared_key=shared_key, password=password)
        assert answer == ["PONG", False, "shared_key or username refused", "", ""]
        with pytest.raises(OSError):  # closed: what follows goes nowhere
            for _ in range(20):
                client.send(["app", 1_767_322_800, {"log": "sneaked in"}, {"chunk": "c1"}])
                client.receive()
        client.close()
        assert receiver.stats["refused handshakes"] == 1
    assert LogLine.objects.count() == 0


def test_without_the_handshake_an_untrusted_client_sends_nothing(ours: Deployment) -> None:
    with serving(trusted=()) as receiver:
        client = Client(receiver.port)
        client.send(["app", 1_767_322_800, {"log": "no handshake", "agora.deployment": ours.pk}])
        assert client.receive()[0] == "HELO"
        assert eventually(client.closed_by_receiver, "the receiver closes the connection")
        client.close()
    assert LogLine.objects.count() == 0


def test_a_decompression_bomb_is_refused_and_nothing_of_it_stored(ours: Deployment) -> None:
    entry = packed([1_767_322_800, {"log": "x" * 1000, "agora.deployment": ours.pk}])
    bomb = gzip.compress(entry * 6000)  # 6 MB of valid entries in about 30 KB
    assert len(bomb) < 100_000
    with serving() as receiver:
        client = Client(receiver.port)
        client.send(["app", bomb, {"chunk": "bomb", "compressed": "gzip"}])
        assert eventually(client.closed_by_receiver, "the receiver closes the connection")
        client.close()
        assert receiver.stats["errors"] + receiver.stats["protocol errors"] == 1
        # The receiver still serves.
        good = Client(receiver.port)
        good.send(["app", 1_767_322_800, {"log": "after the bomb"}, {"chunk": "ok"}])
        assert good.receive() == {"ack": "ok"}
        good.close()
    assert [line.message for line in lines()] == ["after the bomb"]
    assert not ForwardChunk.objects.filter(chunk=ingest.chunk_key(ingest.Peer("x", True), "bomb")).exists()


def test_hostile_clients_are_dropped_while_a_good_client_goes_on(ours: Deployment) -> None:
    with serving() as receiver:
        garbage = Client(receiver.port)
        garbage.sock.sendall(b"\xc1" * 100)  # 0xc1 is never valid msgpack
        oversized = Client(receiver.port)
        with contextlib.suppress(OSError):  # the receiver hangs up before it is all sent
            oversized.sock.sendall(msgpack.packb(["app", b"x" * 3 * 1024 * 1024]))  # 3 MB, the limit is 1 MB
        stalled = Client(receiver.port)
        stalled.sock.sendall(msgpack.packb(["app", 1_767_322_800, {"log": "never finished"}])[:-3])
        idle = Client(receiver.port)  # connected, silent, harmless: it stays

        good = Client(receiver.port)
        for number in range(50):
            good.send(
                ["app", 1_767_322_800, {"log": f"good {number}", "agora.deployment": ours.pk}, {"chunk": f"g{number}"}]
            )
            assert good.receive() == {"ack": f"g{number}"}
        for hostile in (garbage, oversized, stalled):
            assert eventually(hostile.closed_by_receiver, "the receiver closes a hostile connection", timeout=10)
        idle.sock.settimeout(0.2)
        assert not idle.closed_by_receiver()
        good.send(["app", 1_767_322_800, {"log": "still here", "agora.deployment": ours.pk}, {"chunk": "last"}])
        assert good.receive() == {"ack": "last"}
        for client in (garbage, oversized, stalled, idle, good):
            client.close()
        assert receiver.stats["protocol errors"] == 2
        assert receiver.stats["timeouts"] == 1
    assert LogLine.objects.filter(deployment_id=ours.pk).count() == 51
    assert not LogLine.objects.filter(message="never finished").exists()


def test_connections_beyond_the_limit_per_address_are_refused_unless_trusted(ours: Deployment) -> None:
    key = ingest.forward_key_issue(owner="barcelona")
    with serving(trusted=(), max_connections_per_address=2) as receiver:
        first, second, third = Client(receiver.port), Client(receiver.port), Client(receiver.port)
        assert eventually(third.closed_by_receiver, "the third connection is closed")
        assert handshake(second, username=ours.pk, shared_key=key)[1] is True
        second.send(["app", 1_767_322_800, {"log": "within the limit"}, {"chunk": "c"}])
        assert second.receive() == {"ack": "c"}
        for client in (first, second, third):
            client.close()
    # Docker's daemon opens a connection per container, all from the one trusted address.
    with serving(max_connections_per_address=2) as receiver:
        clients = [Client(receiver.port) for _ in range(5)]
        for number, client in enumerate(clients):
            client.send(["app", 1_767_322_800, {"log": f"container {number}"}, {"chunk": f"c{number}"}])
            assert client.receive() == {"ack": f"c{number}"}
            client.close()
    assert len(lines()) == 6


def test_stopping_lets_a_message_being_stored_finish_and_be_acknowledged(ours: Deployment) -> None:
    limits = Limits(max_frame_bytes=8 * 1024 * 1024, max_decompressed_bytes=8 * 1024 * 1024)
    receiver = Receiver(ReceiverConfig(host="127.0.0.1", port=0, limits=limits, trusted=LOOPBACK))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(receiver.start(), loop).result(10)
        entry = [1_767_322_800, {"log": "x" * 40, "agora.deployment": ours.pk}]
        client = Client(receiver.port, timeout=60)
        client.send(["app", packed(*[entry] * 40_000), {"chunk": "big"}])
        eventually(lambda: receiver.storing, "the receiver storing the chunk", timeout=30)
        asyncio.run_coroutine_threadsafe(receiver.close(grace=60), loop).result(90)
        assert client.receive() == {"ack": "big"}
        assert client.closed_by_receiver()
        client.close()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
    assert LogLine.objects.count() == 40_000


@needs_docker
@pytest.mark.docker
@pytest.mark.parametrize(
    "driver_options",
    [{}, {"fluentd-sub-second-precision": "true", "fluentd-request-ack": "true"}],
    ids=["defaults", "event-time-and-ack"],
)
def test_a_docker_container_with_the_fluentd_log_driver_gets_its_lines_stored(
    ours: Deployment, driver_options: dict[str, str]
) -> None:
    import docker  # type: ignore[import-untyped]

    client = docker.from_env(timeout=60)
    name = f"agora-fluentd-test-{uuid.uuid4().hex[:8]}"
    with serving() as receiver:
        container = client.containers.run(
            BUSYBOX,
            ["sh", "-c", "echo hello from docker; echo an error >&2; echo bye"],
            name=name,
            labels={"agora.deployment": ours.pk, "agora.node": "web"},
            log_config=docker.types.LogConfig(
                type="fluentd",
                config={
                    "fluentd-address": f"127.0.0.1:{receiver.port}",
                    "labels": "agora.deployment,agora.node",
                    "tag": "docker.{{.Name}}",
                    **driver_options,
                },
            ),
            detach=True,
        )
        try:
            assert container.wait(timeout=60)["StatusCode"] == 0
            stored = eventually(lambda: lines() if len(lines()) == 3 else None, "the container's three lines")
        finally:
            container.remove(force=True)
            client.close()
    assert sorted((line.message, line.stream) for line in stored) == [
        ("an error", "stderr"),
        ("bye", "stdout"),
        ("hello from docker", "stdout"),
    ]
    assert {(line.deployment_id, line.node, line.container, line.source) for line in stored} == {
        (ours.pk, "web", name, "fluentd")
    }
    if driver_options:  # each line was a chunk the daemon waited for, with a time to the microsecond
        assert ForwardChunk.objects.count() == 3
        assert any(line.time.microsecond for line in stored)
    else:
        assert ForwardChunk.objects.count() == 0


def test_the_command_issues_a_key_that_the_handshake_accepts(ours: Deployment) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("fluentd", issue_key="barcelona", stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert len(key) >= 40 and key not in err.getvalue()
    assert ForwardKey.objects.get(owner="barcelona").shared_key_encrypted != key  # encrypted at rest
    with serving(trusted=()) as receiver:
        client = Client(receiver.port)
        assert handshake(client, username=ours.pk, shared_key=key)[1] is True
        client.close()
    with pytest.raises(CommandError, match="is not an organization slug"):
        call_command("fluentd", issue_key="Not A Slug")


def test_the_command_serves_until_sigterm(ours: Deployment) -> None:
    database = connection.settings_dict
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "fluentd", "--bind", "127.0.0.1:0"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("fluentd receiver listening on 127.0.0.1:"), first
        port = int(first.rsplit(":", 1)[1])
        client = Client(port)
        client.send(["app", 1_767_322_800, {"log": "through the command", "agora.deployment": ours.pk}, {"chunk": "c"}])
        assert client.receive() == {"ack": "c"}
        client.close()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "fluentd receiver stopped" in out
    assert "listening on 127.0.0.1" in err and "stopped" in err
    assert [(line.deployment_id, line.message) for line in lines()] == [(ours.pk, "through the command")]
