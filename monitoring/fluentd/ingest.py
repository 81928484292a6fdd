"""The receiver's database side: forward keys, the handshake's check, storing a chunk exactly once.

These functions block (database, store) and run on the receiver's worker threads, never on
its event loop.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.crypto import decrypt_json, encrypt_json
from config.errors import AgoraError
from monitoring.fluentd.protocol import Entry, Frame, Limits, Ping, check_ping, clean_text
from monitoring.fluentd.records import DEPLOYMENT_LENGTH, claimed_deployment, line_of
from monitoring.models import ForwardChunk, ForwardKey
from monitoring.platform_log import PLATFORM_TAG
from monitoring.store import Line, get_store
from orchestrator.models import Deployment

log = logging.getLogger(__name__)

# Lines handed to the store at a time: memory stays flat however many entries a chunk holds.
WRITE_BATCH = 5000
# What a refused client is told; the receiver's log says which check failed. One answer for an
# unknown deployment, a missing key and a wrong key, so the reply reveals nothing about others.
REFUSED = "shared_key or username refused"


@dataclass(frozen=True)
class Peer:
    """Whom a connection speaks for, settled before any event is accepted."""

    address: str
    trusted: bool
    # The deployment proven by the handshake; "" for a trusted peer, whose records name their own.
    deployment_id: str = ""

    @property
    def identity(self) -> str:
        return f"deployment:{self.deployment_id}" if self.deployment_id else "trusted"


@dataclass(frozen=True)
class Verdict:
    deployment_id: str | None  # None: refused
    reason: str = ""
    shared_key: str = ""


@dataclass(frozen=True)
class Stored:
    lines: int
    duplicate: bool = False  # the chunk was stored before: acknowledged again, not stored twice


# --- keys -----------------------------------------------------------------------------------------


def forward_key_issue(*, owner: str) -> str:
    """A new shared key for the owner's clients (replacing any previous one); returned once, stored encrypted."""
    key = secrets.token_urlsafe(32)
    ForwardKey.objects.update_or_create(owner=owner, defaults={"shared_key_encrypted": encrypt_json(key)})
    return key


def forward_key_of(owner: str) -> str | None:
    found = ForwardKey.objects.filter(owner=owner).values_list("shared_key_encrypted", flat=True).first()
    if found is None:
        return None
    key = decrypt_json(found)
    return key if isinstance(key, str) and key else None


# --- handshake ------------------------------------------------------------------------------------


def authenticate(ping: Ping, *, nonce: bytes, auth_salt: bytes, address: str) -> Verdict:
    """The deployment a PING may ship for: its username, if the key it proves is the one of the deployment's owner."""
    if not ping.username:
        log.warning("fluentd: %s sent no username; it must name a deployment", address)
        return Verdict(None, "the username must name the deployment the logs belong to")
    if len(ping.username) > DEPLOYMENT_LENGTH or clean_text(ping.username) != ping.username:
        log.warning("fluentd: %s named %r, which cannot be a deployment", address, clean_text(ping.username[:40]))
        return Verdict(None, REFUSED)
    owner = Deployment.objects.filter(pk=ping.username).values_list("owner", flat=True).first()
    if owner is None:
        log.warning("fluentd: %s named deployment %r, which does not exist", address, ping.username[:40])
        return Verdict(None, REFUSED)
    try:
        shared_key = forward_key_of(owner)
    except AgoraError as exc:
        log.error("fluentd: the forward key of %r cannot be read: %s", owner, exc.message)
        return Verdict(None, REFUSED)
    if shared_key is None:
        log.warning("fluentd: %s named deployment %s, whose owner %r has no forward key", address, ping.username, owner)
        return Verdict(None, REFUSED)
    reason = check_ping(ping, nonce=nonce, auth_salt=auth_salt, shared_key=shared_key)
    if reason is not None:
        log.warning("fluentd: %s refused for deployment %s: %s", address, ping.username, reason)
        return Verdict(None, REFUSED)
    return Verdict(ping.username, shared_key=shared_key)


# --- events ---------------------------------------------------------------------------------------


def chunk_key(peer: Peer, chunk: str) -> str:
    """A chunk id as stored: scoped to the peer, so one client can never make another's chunk look stored."""
    return hashlib.sha256(f"{peer.identity}\n{chunk}".encode()).hexdigest()


def _existing(deployment_ids: Iterable[str]) -> set[str]:
    wanted = {pk for pk in deployment_ids if pk}
    return set(Deployment.objects.filter(pk__in=wanted).values_list("pk", flat=True)) if wanted else set()


def _lines(batch: list[Entry], frame: Frame, peer: Peer, known: dict[str, bool]) -> list[Line]:
    if peer.deployment_id:
        return [line_of(entry, tag=frame.tag, deployment_id=peer.deployment_id) for entry in batch]
    # A trusted peer (Docker's daemon, the platform itself): the record's label names the deployment,
    # checked to exist; without one, or with an unknown one, the line is the platform's own.
    claims = [claimed_deployment(entry.record) for entry in batch]
    unknown = {claim for claim in claims if claim and claim not in known}
    if unknown:
        found = _existing(unknown)
        known.update({claim: claim in found for claim in unknown})
    platform = frame.tag == PLATFORM_TAG
    return [
        line_of(entry, tag=frame.tag, deployment_id=claim if known.get(claim) else "", platform=platform)
        for entry, claim in zip(batch, claims, strict=True)
    ]


def store_frame(frame: Frame, peer: Peer, limits: Limits) -> Stored:
    """Stores the frame's events and, with the database store, its chunk id in the same transaction.

    The caller acknowledges only after this returns: a chunk whose ack was lost comes again, finds its
    id, and is acknowledged without being stored twice. With Elasticsearch the lines are not part of
    the transaction; their ids come from the chunk (`_keyed`), so lines written before a failure are
    overwritten, not doubled, when the chunk comes again.
    """
    if frame.options.signal != 0:
        log.debug("fluentd: %s sent fluent-bit signal %s (not logs); dropped", peer.address, frame.options.signal)
        return Stored(0)
    store = get_store()
    now = timezone.now()
    known: dict[str, bool] = {}
    written = 0
    with transaction.atomic():
        if frame.options.chunk:
            try:
                with transaction.atomic():
                    ForwardChunk.objects.create(chunk=chunk_key(peer, frame.options.chunk), received_at=now)
            except IntegrityError:
                return Stored(0, duplicate=True)
        batch: list[Entry] = []
        for entry in frame.entries(limits, now=now):
            batch.append(entry)
            if len(batch) >= WRITE_BATCH:
                written += store.write_lines(_keyed(_lines(batch, frame, peer, known), frame, peer, written))
                batch = []
        if batch:
            written += store.write_lines(_keyed(_lines(batch, frame, peer, known), frame, peer, written))
    return Stored(written)


def _keyed(lines: list[Line], frame: Frame, peer: Peer, first: int) -> list[Line]:
    """A chunk's lines keyed by the chunk and their place in it: a resent chunk whose lines reached the
    store (Elasticsearch, outside this transaction) overwrites them. Without a chunk id nothing tells a
    resend from new lines, so those lines keep no key."""
    if not frame.options.chunk:
        return lines
    chunk = chunk_key(peer, frame.options.chunk)
    return [dataclasses.replace(line, key=f"{chunk}/{first + index}") for index, line in enumerate(lines)]


def purge_chunks(*, older_than: datetime.datetime) -> int:
    """Forgets chunk ids received before this: a client resends within minutes, lines are kept for days."""
    deleted, _ = ForwardChunk.objects.filter(received_at__lt=older_than).delete()
    return deleted
