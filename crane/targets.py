"""Targets: registering the local engine, Docker clients per target, checking a target.

Docker clients are made on first use for a target and kept per process (one
per endpoint, TLS material and timeout), never at import time. TLS client keys
are decrypted only to build a client and handed to the TLS library through
anonymous in-memory files, so the plain key never touches a disk.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.crypto import decrypt_json
from crane import conf
from crane.errors import CraneError, InvalidSpec, TargetUnreachable, docker_errors
from crane.models import PublishedPort, Target

logger = logging.getLogger(__name__)

# Swarm services can set no-new-privileges only from this API version (Docker 27) on.
NO_NEW_PRIVILEGES_API = (1, 46)
# Connections kept per client: the collector reads the stats of many containers at once (crane/observe.py).
MAX_POOL_SIZE = 64


def default_target() -> Target:
    """The target deployments go to when none is chosen: CRANE_DEFAULT_TARGET ("local") when it exists,
    else the oldest target, else the local engine registered now as "local"."""
    name = conf.default_target_name()
    target = Target.objects.filter(name=name).first() or Target.objects.order_by("pk").first()
    if target is not None:
        return target
    return register_local_target()


def register_local_target() -> Target:
    """Register the local Docker engine (DOCKER_HOST or the default socket) as target "local".

    Its mode follows the engine: swarm when it is a swarm manager, else engine. An engine
    that does not answer is registered all the same, as unreachable, so that the error
    shows where an operator looks.
    """
    start, end = conf.port_range()
    target = Target(
        name="local",
        provider="on-premises",
        region="local",
        public_host=conf.local_public_host(),
        endpoint=conf.local_endpoint(),
        mode=Target.Mode.ENGINE,
        port_range_start=start,
        port_range_end=end,
    )
    try:
        info = _info(target, timeout=conf.check_timeout())
    except CraneError as exc:
        target.state, target.last_error = Target.State.UNREACHABLE, exc.message
    else:
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") == "active" and swarm.get("ControlAvailable"):
            target.mode = Target.Mode.SWARM
        target.state = Target.State.REACHABLE
        target.docker_version = str(info.get("ServerVersion", ""))[:50]
    target.checked_at = timezone.now()
    try:
        with transaction.atomic():
            target.save()
    except IntegrityError:
        # Another process registered it first.
        return Target.objects.get(name="local")
    return target


# --- clients


class _Material:
    """PEM texts as files the ssl module can open: anonymous memory files on Linux, else 0600 temp files."""

    def __init__(self, texts: dict[str, str]) -> None:
        self.paths: dict[str, str] = {}
        self._fds: list[int] = []
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        for label, text in texts.items():
            if not text:
                continue
            if hasattr(os, "memfd_create"):
                fd = os.memfd_create(f"agora-{label}")
                os.write(fd, text.encode())
                self._fds.append(fd)
                self.paths[label] = f"/proc/{os.getpid()}/fd/{fd}"
            else:  # pragma: no cover - not Linux
                if self._dir is None:
                    self._dir = tempfile.TemporaryDirectory(prefix="agora-tls-")
                path = Path(self._dir.name) / label
                path.touch(mode=0o600)
                path.write_text(text)
                self.paths[label] = str(path)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        if self._dir is not None:
            self._dir.cleanup()


_clients: dict[tuple[Any, ...], tuple[Any, _Material | None]] = {}
_clients_lock = threading.Lock()


def _tls_texts(target: Target) -> dict[str, str]:
    if not target.tls_client_key_encrypted and not target.tls_ca_certificate and not target.tls_client_certificate:
        return {}
    key = decrypt_json(target.tls_client_key_encrypted).get("pem", "") if target.tls_client_key_encrypted else ""
    if bool(key) != bool(target.tls_client_certificate):
        raise InvalidSpec(f'Target "{target.name}": a TLS client certificate needs its key and the other way round.')
    return {"ca": target.tls_ca_certificate, "cert": target.tls_client_certificate, "key": key}


def _timeout(endpoint: str, seconds: float) -> Any:
    # Over TCP connecting is what hangs on a dead host: give it its own, short, limit.
    # Unix sockets answer or fail at once, and the SDK's unix and ssh adapters take one number only.
    if endpoint.startswith(("tcp://", "http://", "https://")):
        return (min(seconds, conf.check_timeout()), seconds)
    return seconds


def client_for(target: Target, *, timeout: float | None = None) -> Any:
    """A docker.DockerClient for the target, made on first use and then reused in this process."""
    seconds = conf.docker_timeout() if timeout is None else timeout
    texts = _tls_texts(target)
    fingerprint = hashlib.sha256(repr(sorted(texts.items())).encode()).hexdigest()
    key = (os.getpid(), target.endpoint, fingerprint, seconds)
    with _clients_lock:
        cached = _clients.get(key)
    if cached is not None:
        return cached[0]
    material = _Material(texts) if texts else None
    try:
        client = _new_client(target, seconds, material)
    except BaseException:
        if material is not None:
            material.close()
        raise
    with _clients_lock:
        if key in _clients:  # another thread made one meanwhile
            client.close()
            if material is not None:
                material.close()
            return _clients[key][0]
        _clients[key] = (client, material)
    return client


def _new_client(target: Target, seconds: float, material: _Material | None) -> Any:
    endpoint = target.endpoint.strip()
    if not endpoint.startswith(("unix://", "tcp://", "ssh://")):
        raise InvalidSpec(f'Target "{target.name}": endpoint {endpoint!r} must start with unix://, tcp:// or ssh://.')
    tls: Any = False
    if material is not None:
        paths = material.paths
        client_cert = (paths["cert"], paths["key"]) if "cert" in paths else None
        # Without a CA of its own the daemon's certificate is checked against the system's CAs: never unverified.
        tls = docker.tls.TLSConfig(client_cert=client_cert, ca_cert=paths.get("ca"), verify=True)
    with docker_errors(target.name, "connect", endpoint=endpoint):
        return docker.DockerClient(
            base_url=endpoint,
            version="auto",
            timeout=_timeout(endpoint, seconds),
            tls=tls,
            use_ssh_client=endpoint.startswith("ssh://"),
            max_pool_size=MAX_POOL_SIZE,
        )


def forget_clients() -> None:
    """Close every cached client (after a target's endpoint or key changed, and in tests)."""
    with _clients_lock:
        entries = list(_clients.values())
        _clients.clear()
    for client, material in entries:
        client.close()
        if material is not None:
            material.close()


def api_version(client: Any) -> tuple[int, int]:
    major, _, minor = str(client.api.api_version).partition(".")
    return int(major), int(minor or 0)


def _info(target: Target, *, timeout: float) -> dict[str, Any]:
    client = client_for(target, timeout=timeout)
    with docker_errors(target.name, "read the daemon's information"):
        return dict(client.info())


# --- checking


@dataclass(frozen=True)
class TargetCheck:
    target: str
    state: str
    seconds: float
    docker_version: str = ""
    api_version: str = ""
    swarm_role: str = ""  # manager, worker or none
    managers: int = 0
    workers: int = 0
    nodes_ready: int = 0
    nodes_down: int = 0
    free_ports: int = 0
    error: str = ""
    warnings: tuple[str, ...] = ()


def target_check(target: Target) -> TargetCheck:
    """Ask the target how it is (with a short timeout) and record the answer on the row."""
    started = time.monotonic()
    total_ports = target.port_range_end - target.port_range_start + 1
    free_ports = total_ports - PublishedPort.objects.filter(target=target).count()
    warnings: list[str] = []
    try:
        client = client_for(target, timeout=conf.check_timeout())
        with docker_errors(target.name, "read the daemon's information"):
            version = client.version()
            info = client.info()
            swarm = info.get("Swarm") or {}
            manager = bool(swarm.get("ControlAvailable"))
            role = "manager" if manager else ("worker" if swarm.get("LocalNodeState") == "active" else "none")
            nodes = client.api.nodes() if manager else []
    except TargetUnreachable as exc:
        _record(target, state=Target.State.UNREACHABLE, error=exc.message)
        return TargetCheck(
            target.name, target.state, time.monotonic() - started, free_ports=free_ports, error=exc.message
        )
    except CraneError as exc:
        _record(target, state=Target.State.DEGRADED, error=exc.message)
        return TargetCheck(
            target.name, target.state, time.monotonic() - started, free_ports=free_ports, error=exc.message
        )

    managers = sum(1 for n in nodes if n.get("Spec", {}).get("Role") == "manager")
    ready = sum(1 for n in nodes if n.get("Status", {}).get("State") == "ready")
    down = len(nodes) - ready
    error = ""
    state = Target.State.REACHABLE
    if target.mode == Target.Mode.SWARM and not manager:
        state, error = Target.State.DEGRADED, "registered in swarm mode, but its endpoint is not a swarm manager"
    elif down:
        state, error = Target.State.DEGRADED, f"{down} of {len(nodes)} swarm nodes are down"
    api = str(version.get("ApiVersion", ""))
    if target.mode == Target.Mode.SWARM and api and _parse(api) < NO_NEW_PRIVILEGES_API:
        warnings.append(
            f"Docker API {api} cannot set no-new-privileges on swarm services (1.46 can); set "
            '"no-new-privileges": true in the daemon.json of every node.'
        )
    if free_ports <= 0:
        warnings.append("no free published port left in the range")
    _record(
        target,
        state=state,
        error=error,
        docker_version=str(version.get("Version", ""))[:50],
        api_version=api[:10],
        swarm_managers=managers,
        swarm_workers=len(nodes) - managers,
        swarm_nodes_down=down,
    )
    return TargetCheck(
        target=target.name,
        state=state,
        seconds=time.monotonic() - started,
        docker_version=target.docker_version,
        api_version=target.api_version,
        swarm_role=role,
        managers=managers,
        workers=len(nodes) - managers,
        nodes_ready=ready,
        nodes_down=down,
        free_ports=free_ports,
        error=error,
        warnings=tuple(warnings),
    )


def _parse(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return (0, 0)


def _record(target: Target, *, state: str, error: str, **fields: Any) -> None:
    target.state = state
    target.last_error = error
    target.checked_at = timezone.now()
    for name, value in fields.items():
        setattr(target, name, value)
    target.save(update_fields=["state", "last_error", "checked_at", "updated_at", *fields])
