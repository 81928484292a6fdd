"""The Fluentd forward receiver: an asyncio TCP server, one task per connection.

A connection from a trusted address (AGORA_FLUENTD_TRUSTED: by default this host, where the
Docker daemon's fluentd log driver connects from) sends events at once; its records name
their deployment with the `agora.deployment` label. Any other connection gets a HELO and
must answer with a PING proving its organization's shared key, naming as username the
deployment it ships for; everything it sends then belongs to that deployment.

Each connection buffers at most one message (AGORA_FLUENTD_MAX_CHUNK_BYTES, 16 KiB before the
handshake), must finish a message it started without stalling, and waits for its own writes
only: the database work runs on a small thread pool, so a slow write or a hostile peer holds
up its own connection and nobody else's. A chunk is acknowledged only after its lines are
committed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import ipaddress
import logging
import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from monitoring.fluentd import ingest
from monitoring.fluentd.protocol import (
    HANDSHAKE_MAX_BYTES,
    READ_SIZE,
    Decoder,
    Limits,
    ProtocolError,
    ack,
    clean_text,
    helo,
    parse_frame,
    parse_ping,
    pong,
)

log = logging.getLogger("monitoring.fluentd")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
P = ParamSpec("P")
R = TypeVar("R")


def parse_bind(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"the bind address must be HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def parse_trusted(values: Sequence[str]) -> tuple[Network, ...]:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"AGORA_FLUENTD_TRUSTED: {value!r} is not an address or a network (CIDR)") from None
    return tuple(networks)


def is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in trusted)


@dataclass(frozen=True)
class ReceiverConfig:
    host: str
    port: int
    limits: Limits
    trusted: tuple[Network, ...] = ()
    hostname: str = field(default_factory=socket.gethostname)
    workers: int = 4
    max_connections: int = 512
    max_connections_per_address: int = 64  # trusted addresses excepted
    handshake_timeout: float = 10.0
    # A message under way must make progress: no byte for this long, or not finished after the
    # second limit, and the connection ends. Between messages a connection may stay idle.
    stall_timeout: float = 30.0
    message_timeout: float = 300.0
    write_timeout: float = 30.0
    chunk_retention: datetime.timedelta = datetime.timedelta(days=14)

    @classmethod
    def from_settings(cls, *, bind: str | None = None, **overrides: Any) -> ReceiverConfig:
        host, port = parse_bind(bind or settings.AGORA_FLUENTD_BIND)
        values: dict[str, Any] = {
            "host": host,
            "port": port,
            "limits": Limits(
                max_frame_bytes=settings.AGORA_FLUENTD_MAX_CHUNK_BYTES,
                max_decompressed_bytes=settings.AGORA_FLUENTD_MAX_DECOMPRESSED_BYTES,
            ),
            "trusted": parse_trusted(settings.AGORA_FLUENTD_TRUSTED),
            "chunk_retention": datetime.timedelta(days=settings.AGORA_MONITORING_RETENTION_DAYS),
        }
        values.update(overrides)
        return cls(**values)


_END = object()


class _Closing(Exception):
    """The connection ends without a reason worth a warning."""


@dataclass
class _Connection:
    address: str
    trusted: bool
    busy: bool = False  # storing a message: let it finish on shutdown


class Receiver:
    def __init__(self, config: ReceiverConfig) -> None:
        self.config = config
        self.stats: collections.Counter[str] = collections.Counter()
        self._executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="fluentd-db")
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[Any], _Connection] = {}
        self._per_address: collections.Counter[str] = collections.Counter()
        self._slots = asyncio.Semaphore(config.workers)
        self._closing = False
        self._purger: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.config.host, self.config.port, reuse_address=True, limit=READ_SIZE
        )
        self._purger = asyncio.create_task(self._purge_chunks())
        trusted = ", ".join(str(network) for network in self.config.trusted) or "none"
        log.info("fluentd: listening on %s:%s (trusted without handshake: %s)", self.config.host, self.port, trusted)

    @property
    def storing(self) -> int:
        """Connections whose message is being stored right now."""
        return sum(connection.busy for connection in list(self._connections.values()))

    async def close(self, *, grace: float = 10.0) -> None:
        """Stops accepting, lets messages being stored finish (up to `grace` seconds), then ends every connection."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        if self._purger is not None:
            self._purger.cancel()
        if self.storing:
            log.info("fluentd: stopping; %s messages being stored may finish first", self.storing)
        for task, connection in list(self._connections.items()):
            if not connection.busy:
                task.cancel()
        if self._connections:
            _, late = await asyncio.wait(list(self._connections), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=grace)
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown_workers)
        log.info("fluentd: stopped (%s)", ", ".join(f"{k} {v}" for k, v in sorted(self.stats.items())) or "idle")

    def _shutdown_workers(self) -> None:
        # Every worker thread closes its own database connection, which lives in that thread only.
        barrier = threading.Barrier(self.config.workers)

        def close_connection() -> None:
            connections.close_all()
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=5)

        for future in [self._executor.submit(close_connection) for _ in range(self.config.workers)]:
            future.result()
        self._executor.shutdown(wait=True)

    async def _db(self, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        def in_worker() -> R:
            close_old_connections()
            try:
                return function(*args, **kwargs)
            finally:
                close_old_connections()

        return await asyncio.get_running_loop().run_in_executor(self._executor, in_worker)

    async def _purge_chunks(self) -> None:
        while True:
            try:
                purged = await self._db(ingest.purge_chunks, older_than=timezone.now() - self.config.chunk_retention)
                if purged:
                    log.info("fluentd: forgot %s chunk ids older than %s", purged, self.config.chunk_retention)
            except Exception as exc:
                log.warning("fluentd: purging old chunk ids failed (%s); trying again in an hour", exc)
            await asyncio.sleep(3600)

    # --- one connection ---------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        address = str(peername[0]) if peername else "unknown"
        task = asyncio.current_task()
        assert task is not None
        if self._closing:
            writer.close()
            return
        if len(self._connections) >= self.config.max_connections:
            log.warning("fluentd: %s refused: %s connections already", address, len(self._connections))
            self.stats["refused connections"] += 1
            writer.close()
            return
        trusted = is_trusted(address, self.config.trusted)
        # A trusted address is exempt: Docker's daemon opens one connection per container.
        if not trusted and self._per_address[address] >= self.config.max_connections_per_address:
            log.warning("fluentd: %s refused: %s connections from it already", address, self._per_address[address])
            self.stats["refused connections"] += 1
            writer.close()
            return
        connection = _Connection(address, trusted)
        self._connections[task] = connection
        self._per_address[address] += 1
        self.stats["connections"] += 1
        try:
            await self._serve(reader, writer, connection)
        except ProtocolError as exc:
            self.stats["protocol errors"] += 1
            log.warning("fluentd: %s dropped: %s", address, exc)
        except TimeoutError as exc:
            self.stats["timeouts"] += 1
            log.warning("fluentd: %s dropped: %s", address, str(exc) or "timed out")
        except (_Closing, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the receiver is stopping
        except Exception:
            self.stats["errors"] += 1
            log.exception("fluentd: %s dropped after an error; its unacknowledged chunk will come again", address)
        finally:
            del self._connections[task]
            self._per_address[address] -= 1
            if not self._per_address[address]:
                del self._per_address[address]
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=1)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: _Connection) -> None:
        address = connection.address
        if connection.trusted:
            peer = ingest.Peer(address=address, trusted=True)
        else:
            peer = await self._handshake(reader, writer, address)
        decoder = Decoder(self.config.limits.max_frame_bytes)
        loop = asyncio.get_running_loop()
        message_started: float | None = None
        while not self._closing:
            data = await self._read(reader, decoder, message_started)
            if not data:
                if decoder.pending:
                    raise ProtocolError(f"closed in the middle of a message ({decoder.pending} bytes received)")
                return
            decoder.feed(data)
            messages = iter(decoder)
            while True:
                # A message becomes Python objects only once a worker can take it: however many
                # connections wait, at most `workers` decoded messages exist at a time.
                async with self._slots:
                    message = next(messages, _END)
                    if message is _END:
                        break
                    frame = parse_frame(message)
                    if frame is None:
                        continue  # a heartbeat
                    connection.busy = True
                    stored = await self._db(ingest.store_frame, frame, peer, self.config.limits)
                    self.stats["lines"] += stored.lines
                    self.stats["duplicate chunks" if stored.duplicate else "messages"] += 1
                # Outside the slot: a client slow to read its acks holds up only itself.
                if frame.options.chunk:
                    writer.write(ack(frame.options.chunk))
                    await asyncio.wait_for(writer.drain(), self.config.write_timeout)
                connection.busy = False
                if self._closing:
                    return
            if not decoder.pending:
                message_started = None
            elif message_started is None:
                message_started = loop.time()

    async def _read(self, reader: asyncio.StreamReader, decoder: Decoder, message_started: float | None) -> bytes:
        """The next bytes. Between messages a connection may idle; a message under way must keep coming."""
        if not decoder.pending:
            return await reader.read(READ_SIZE)
        loop = asyncio.get_running_loop()
        remaining = (message_started or loop.time()) + self.config.message_timeout - loop.time()
        if remaining <= 0:
            raise TimeoutError(f"a message took longer than {self.config.message_timeout:.0f} s to arrive")
        try:
            return await asyncio.wait_for(reader.read(READ_SIZE), min(self.config.stall_timeout, remaining))
        except TimeoutError:
            raise TimeoutError(f"a message stalled after {decoder.pending} bytes") from None

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str) -> ingest.Peer:
        nonce = secrets.token_bytes(16)
        auth_salt = secrets.token_bytes(16)
        writer.write(helo(nonce=nonce, auth_salt=auth_salt))
        await asyncio.wait_for(writer.drain(), self.config.write_timeout)
        decoder = Decoder(HANDSHAKE_MAX_BYTES)
        try:
            message = await asyncio.wait_for(self._first_message(reader, decoder), self.config.handshake_timeout)
        except TimeoutError:
            raise TimeoutError(f"no PING within {self.config.handshake_timeout:.0f} s of the HELO") from None
        ping = parse_ping(message)
        verdict = await self._db(ingest.authenticate, ping, nonce=nonce, auth_salt=auth_salt, address=address)
        ok = verdict.deployment_id is not None
        answer = pong(
            ok=ok,
            reason=verdict.reason,
            hostname=self.config.hostname,
            ping=ping,
            nonce=nonce,
            shared_key=verdict.shared_key,
        )
        writer.write(answer)
        await asyncio.wait_for(writer.drain(), self.config.write_timeout)
        if verdict.deployment_id is None:
            self.stats["refused handshakes"] += 1
            raise _Closing
        hostname = clean_text(ping.hostname[:100])
        log.info("fluentd: %s (%s) ships for deployment %s", address, hostname, verdict.deployment_id)
        return ingest.Peer(address=address, trusted=False, deployment_id=verdict.deployment_id)

    @staticmethod
    async def _first_message(reader: asyncio.StreamReader, decoder: Decoder) -> Any:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                raise _Closing
            decoder.feed(data)
            messages = iter(decoder)
            for message in messages:
                if decoder.pending or next(messages, None) is not None:
                    raise ProtocolError("events sent before the handshake's PONG")
                return message


async def run(
    config: ReceiverConfig, *, stop: asyncio.Event, started: Callable[[Receiver], None] | None = None
) -> None:
    """Serves until `stop` is set, then closes cleanly."""
    receiver = Receiver(config)
    await receiver.start()
    if started is not None:
        started(receiver)
    try:
        await stop.wait()
    finally:
        await receiver.close()
