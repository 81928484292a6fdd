"""The Fluentd forward protocol, version 1, without any I/O.

Bytes go in (`Decoder.feed`), messages come out: handshake PINGs and `Frame`s in the four
event modes (Message, Forward, PackedForward, CompressedPackedForward), whose `entries()`
yield (time, record) pairs lazily, so a large or compressed chunk is never held decoded
in full. Everything a peer can get wrong raises `ProtocolError` with what was wrong; the
caller then drops the connection without acknowledging, and the client resends.

What real clients send, beyond the letter of the specification: fluentd writes the
entries of PackedForward as a msgpack *str* (arbitrary bytes in a str), and its compressed
chunks hold one gzip member per buffer write; fluent-bit may send `[[time, metadata],
record]` entries; times are integers, floats or EventTime (ext type 0, big-endian seconds
and nanoseconds). Strings are decoded with `surrogateescape`, so bytes that are not UTF-8
survive decoding and can be turned back into the exact bytes (`as_bytes`).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import msgpack  # type: ignore[import-untyped]

EVENT_TIME_CODE = 0
# Bytes asked of the socket per read; the decoder's buffer has this much room above the
# frame limit, so a read that carries the start of the next frame never overflows it.
READ_SIZE = 64 * 1024
# The handshake's messages are a few hundred bytes; before it succeeds nothing more is buffered.
HANDSHAKE_MAX_BYTES = 16 * 1024
# Decompressed bytes produced per step: the unit of memory a compressed chunk costs at a time.
INFLATE_STEP = 256 * 1024
MAX_TAG_LENGTH = 1024
MAX_CHUNK_ID_LENGTH = 128
# Latest second a datetime can hold (9999-12-31T23:59:59Z).
_MAX_SECONDS = 253_402_300_799


class ProtocolError(Exception):
    """The peer sent what the forward protocol does not allow: the connection ends and nothing of it is stored."""


@dataclass(frozen=True)
class Limits:
    max_frame_bytes: int
    max_decompressed_bytes: int


@dataclass(frozen=True)
class EventTime:
    seconds: int
    nanoseconds: int


class Mode(StrEnum):
    MESSAGE = "Message"
    FORWARD = "Forward"
    PACKED_FORWARD = "PackedForward"
    COMPRESSED_PACKED_FORWARD = "CompressedPackedForward"


@dataclass(frozen=True)
class Options:
    chunk: str | None = None
    size: int | None = None
    compressed: str | None = None
    # fluent-bit's `fluent_signal`: 0 logs, 1 metrics, 2 traces. Only logs are events here.
    signal: int = 0


@dataclass(frozen=True)
class Entry:
    time: datetime.datetime
    record: dict[Any, Any]  # keys are str, or bytes when a client packs them as bin


@dataclass(frozen=True)
class Frame:
    """One event message. `body` is a (time, record) pair (Message), a list of raw entries
    (Forward) or the packed entries' bytes (PackedForward, gzip data when compressed)."""

    tag: str
    mode: Mode
    options: Options
    body: Any

    def entries(self, limits: Limits, *, now: datetime.datetime) -> Iterator[Entry]:
        """The events, checked one by one; a malformed one raises ProtocolError when reached."""
        if self.mode is Mode.MESSAGE:
            time, record = self.body
            yield _entry([time, record], now=now, index=0)
        elif self.mode is Mode.FORWARD:
            for index, raw in enumerate(self.body):
                yield _entry(raw, now=now, index=index)
        elif self.mode is Mode.PACKED_FORWARD:
            yield from _unpack_entries(iter((self.body,)), limits, now=now)
        else:
            yield from _unpack_entries(gunzip_members(self.body, limits.max_decompressed_bytes), limits, now=now)


@dataclass(frozen=True)
class Ping:
    hostname: str
    shared_key_salt: bytes
    shared_key_hexdigest: str
    username: str
    password_digest: str


def as_bytes(value: Any, what: str) -> bytes:
    """A msgpack bin or str as the bytes that were sent (str decoded with surrogateescape)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    raise ProtocolError(f"{what} must be a msgpack str or bin, got {type(value).__name__}")


def clean_text(value: str) -> str:
    """Text fit to store: bytes that were not UTF-8 become U+FFFD instead of lone surrogates."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # a surrogate that no undecodable byte made
            return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EVENT_TIME_CODE:
        if len(data) != 8:
            raise ProtocolError(f"an EventTime (ext type 0) is 8 bytes long, this one is {len(data)}")
        seconds, nanoseconds = struct.unpack(">II", data)
        if nanoseconds >= 1_000_000_000:
            raise ProtocolError(f"an EventTime has {nanoseconds} nanoseconds, more than a second")
        return EventTime(seconds, nanoseconds)
    return msgpack.ExtType(code, data)


def _unpacker(max_buffer_size: int) -> Any:
    # msgpack bounds every str, bin, array and map by max_buffer_size too, and nesting at 1024 levels.
    return msgpack.Unpacker(
        max_buffer_size=max_buffer_size,
        raw=False,
        unicode_errors="surrogateescape",
        ext_hook=_ext_hook,
        timestamp=3,  # ext type -1 as a datetime
    )


def _next(unpacker: Any) -> Any:
    """The next complete object, or StopIteration; msgpack's own errors become ProtocolError."""
    try:
        return next(unpacker)
    except (StopIteration, ProtocolError):
        raise
    except Exception as exc:  # msgpack raises ValueError, FormatError, StackError, ExtraData...
        raise ProtocolError(f"not valid msgpack: {str(exc) or type(exc).__name__}") from None


class Decoder:
    """Turns the bytes of one connection into messages, buffering at most `max_bytes` of an unfinished one."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._unpacker = _unpacker(max_bytes + READ_SIZE)
        self._fed = 0
        self._complete = 0  # stream offset where the last complete message ended

    def feed(self, data: bytes) -> None:
        try:
            self._unpacker.feed(data)
        except msgpack.BufferFull:
            raise ProtocolError(f"a message is larger than {self._max_bytes} bytes") from None
        self._fed += len(data)

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete message: non-zero means a message is under way."""
        return self._fed - self._complete

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                message = _next(self._unpacker)
            except StopIteration:
                return
            end = self._unpacker.tell()  # exact right after a complete message
            if end - self._complete > self._max_bytes:
                raise ProtocolError(f"a message is larger than {self._max_bytes} bytes")
            self._complete = end
            yield message


def _event_time(value: Any, *, now: datetime.datetime, index: int) -> datetime.datetime:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], dict | type(None)):
        value = value[0]  # fluent-bit 2.1+: [time, metadata]
    if isinstance(value, EventTime):
        seconds, micro = value.seconds, value.nanoseconds // 1000
    elif isinstance(value, bool):
        raise ProtocolError(f"entry {index}: time is a boolean, not a time")
    elif isinstance(value, int):
        if value == 0:
            return now  # fluentd's convention: 0 means "when received"
        seconds, micro = value, 0
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ProtocolError(f"entry {index}: time {value} is not a number of seconds")
        seconds = int(value)
        micro = min(round((value - seconds) * 1_000_000), 999_999)
    elif isinstance(value, datetime.datetime):  # msgpack's own timestamp extension
        return value.astimezone(datetime.UTC)
    else:
        raise ProtocolError(f"entry {index}: time must be an integer, a float or an EventTime, got {value!r:.60}")
    if not 0 <= seconds <= _MAX_SECONDS:
        raise ProtocolError(f"entry {index}: time {seconds} is out of range")
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(microsecond=micro)


def _entry(raw: Any, *, now: datetime.datetime, index: int) -> Entry:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise ProtocolError(f"entry {index} must be an array [time, record], got {type(raw).__name__}")
    time, record = raw
    if not isinstance(record, dict):
        raise ProtocolError(f"entry {index}: the record must be a map, got {type(record).__name__}")
    return Entry(time=_event_time(time, now=now, index=index), record=record)


def _unpack_entries(pieces: Iterator[bytes], limits: Limits, *, now: datetime.datetime) -> Iterator[Entry]:
    """The entries of a msgpack stream that arrives in pieces (one bin, or a decompressor's output)."""
    unpacker = _unpacker(limits.max_frame_bytes + INFLATE_STEP)
    index = 0
    fed = 0
    complete = 0  # where the last complete entry ended (tell() counts partial progress too)
    for piece in pieces:
        try:
            unpacker.feed(piece)
        except msgpack.BufferFull:
            raise ProtocolError(f"entry {index} is larger than {limits.max_frame_bytes} bytes") from None
        fed += len(piece)
        while True:
            try:
                raw = _next(unpacker)
            except StopIteration:
                break
            complete = unpacker.tell()
            yield _entry(raw, now=now, index=index)
            index += 1
    if fed != complete:
        raise ProtocolError(f"the packed entries end in the middle of entry {index}")


def gunzip_members(data: bytes, limit: int) -> Iterator[bytes]:
    """The decompressed bytes of gzip data made of one or more members, at most `limit` bytes in all."""
    if not data:
        return
    produced = 0
    remaining = data
    while remaining:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header and trailer required
        pending = remaining
        while not inflater.eof:
            try:
                piece = inflater.decompress(pending, INFLATE_STEP)
            except zlib.error as exc:
                raise ProtocolError(f"the compressed entries are not valid gzip data: {exc}") from None
            pending = inflater.unconsumed_tail
            if not piece and not pending:
                raise ProtocolError("the compressed entries end in the middle of a gzip member")
            produced += len(piece)
            if produced > limit:
                raise ProtocolError(f"the compressed entries decompress to more than {limit} bytes")
            if piece:
                yield piece
        remaining = inflater.unused_data


def _options(value: Any) -> Options:
    if value is None:
        return Options()
    if not isinstance(value, dict):
        raise ProtocolError(f"the option must be a map, got {type(value).__name__}")
    chunk = value.get("chunk")
    if chunk is not None:
        if not isinstance(chunk, str) or clean_text(chunk) != chunk:
            raise ProtocolError("the chunk option must be a UTF-8 string")
        if not 0 < len(chunk) <= MAX_CHUNK_ID_LENGTH:
            raise ProtocolError(f"the chunk option must be 1 to {MAX_CHUNK_ID_LENGTH} characters long")
    size = value.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise ProtocolError("the size option must be a non-negative integer")
    compressed = value.get("compressed")
    if compressed is not None and compressed not in ("gzip", "text"):
        raise ProtocolError(f"compression {compressed!r:.40} is not supported; use gzip")
    signal = value.get("fluent_signal", 0)
    if isinstance(signal, bool) or not isinstance(signal, int):
        raise ProtocolError("the fluent_signal option must be an integer")
    return Options(chunk=chunk, size=size, compressed=compressed, signal=signal)


def parse_frame(message: Any) -> Frame | None:
    """An event message in any of the four modes; None for a heartbeat (msgpack nil)."""
    if message is None:
        return None
    if not isinstance(message, list) or not 2 <= len(message) <= 4:
        raise ProtocolError(
            f"an event message is an array of 2 to 4 items [tag, ...], got {type(message).__name__}"
            + (f" of {len(message)}" if isinstance(message, list) else "")
        )
    tag = message[0]
    if not isinstance(tag, str) or not tag:
        raise ProtocolError("the tag must be a non-empty string")
    if len(tag) > MAX_TAG_LENGTH:
        raise ProtocolError(f"the tag is longer than {MAX_TAG_LENGTH} characters")
    tag = clean_text(tag)
    second = message[1]
    if isinstance(second, list):
        if len(message) > 3:
            raise ProtocolError("a Forward message is [tag, entries, option]")
        options = _options(message[2] if len(message) == 3 else None)
        if options.compressed == "gzip":
            raise ProtocolError("only PackedForward entries can be compressed")
        return Frame(tag=tag, mode=Mode.FORWARD, options=options, body=second)
    if isinstance(second, bytes | str):
        if len(message) > 3:
            raise ProtocolError("a PackedForward message is [tag, entries, option]")
        options = _options(message[2] if len(message) == 3 else None)
        body = as_bytes(second, "the packed entries")
        mode = Mode.COMPRESSED_PACKED_FORWARD if options.compressed == "gzip" else Mode.PACKED_FORWARD
        return Frame(tag=tag, mode=mode, options=options, body=body)
    if len(message) < 3:
        raise ProtocolError("a Message is [tag, time, record, option]")
    options = _options(message[3] if len(message) == 4 else None)
    if options.compressed == "gzip":
        raise ProtocolError("only PackedForward entries can be compressed")
    return Frame(tag=tag, mode=Mode.MESSAGE, options=options, body=(second, message[2]))


# --- handshake ------------------------------------------------------------------------------------


def helo(*, nonce: bytes, auth_salt: bytes) -> bytes:
    # A non-empty `auth` asks the client for a username and password: the username names the deployment.
    return bytes(msgpack.packb(["HELO", {"nonce": nonce, "auth": auth_salt, "keepalive": True}], use_bin_type=True))


def parse_ping(message: Any) -> Ping:
    if not isinstance(message, list) or len(message) != 6 or message[0] != "PING":
        raise ProtocolError(
            "expected the handshake's PING [PING, hostname, shared_key_salt, shared_key_hexdigest, username, password]"
        )
    _, hostname, salt, digest, username, password_digest = message
    for name, value in (
        ("hostname", hostname),
        ("shared_key_hexdigest", digest),
        ("username", username),
        ("password", password_digest),
    ):
        if not isinstance(value, str):
            raise ProtocolError(f"the PING's {name} must be a string")
    return Ping(
        hostname=hostname,
        shared_key_salt=as_bytes(salt, "the PING's shared_key_salt"),
        shared_key_hexdigest=digest,
        username=username,
        password_digest=password_digest,
    )


def _sha512_hex(*parts: bytes) -> str:
    digest = hashlib.sha512()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def shared_key_digest(*, salt: bytes, hostname: str, nonce: bytes, shared_key: str) -> str:
    """sha512_hex(salt + hostname + nonce + shared_key): how each side proves it knows the key."""
    return _sha512_hex(salt, _raw(hostname), nonce, _raw(shared_key))


def password_digest(*, auth_salt: bytes, username: str, password: str) -> str:
    return _sha512_hex(auth_salt, _raw(username), _raw(password))


def check_ping(ping: Ping, *, nonce: bytes, auth_salt: bytes, shared_key: str) -> str | None:
    """Why the PING fails for this key, or None when it proves the key.

    The password is optional: none at all (fluent-bit without `Password`) or the shared key again,
    which binds the username to the key; any other password is a misconfiguration and fails."""
    expected = shared_key_digest(salt=ping.shared_key_salt, hostname=ping.hostname, nonce=nonce, shared_key=shared_key)
    if not hmac.compare_digest(_raw(ping.shared_key_hexdigest), expected.encode()):
        return "shared_key mismatch"
    given = _raw(ping.password_digest)
    allowed = (
        password_digest(auth_salt=auth_salt, username=ping.username, password=password) for password in ("", shared_key)
    )
    if given and not any(hmac.compare_digest(given, digest.encode()) for digest in allowed):
        return "username/password mismatch: the password is the shared key, or none"
    return None


def pong(*, ok: bool, reason: str, hostname: str, ping: Ping | None, nonce: bytes, shared_key: str) -> bytes:
    if not ok or ping is None:
        return bytes(msgpack.packb(["PONG", False, reason, "", ""], use_bin_type=True))
    digest = shared_key_digest(salt=ping.shared_key_salt, hostname=hostname, nonce=nonce, shared_key=shared_key)
    return bytes(msgpack.packb(["PONG", True, "", hostname, digest], use_bin_type=True))


def ack(chunk: str) -> bytes:
    return bytes(msgpack.packb({"ack": chunk}, use_bin_type=True))
