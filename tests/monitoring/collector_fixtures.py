"""Fixtures of the collector's tests: labelled services made through crane on this machine's Docker,
their Deployment rows, and a bounded wait."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any, TypeVar

import pytest

from catalogue.models import Organization
from crane import driver
from crane.models import Target
from crane.specs import HealthCheck, ServiceSpec
from monitoring.collector import LogFollowers
from orchestrator.models import Deployment
from tests.crane.conftest import BUSYBOX, MIB, SWARM, make_target, new_deployment_id, sweep
from tests.factories import OrganizationFactory

needs_swarm = pytest.mark.skipif(not SWARM, reason="the local Docker daemon is not an active swarm manager")

_T = TypeVar("_T")


def service(name: str, script: str, **fields: Any) -> ServiceSpec:
    """A busybox container running `script` with sh; small, and stopped within a second."""
    values: dict[str, Any] = {
        "name": name,
        "image": BUSYBOX,
        "command": ("sh", "-c", script),
        "cpu_limit": 0.25,
        "memory_limit": 32 * MIB,
        "options": {"init": True, "stop_grace_period": 1},
    }
    values.update(fields)
    return ServiceSpec(**values)


def healthy_when(check: str) -> HealthCheck:
    return HealthCheck(test=("CMD-SHELL", check), interval=0.5, timeout=2, retries=1)


def eventually(probe: Callable[[], _T | None], what: str, *, timeout: float = 60.0, pause: float = 0.5) -> _T:
    """The first truthy answer of `probe`, asked until `timeout` (a bounded loop)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(pause)


class Deployments:
    """Deployment rows with their Docker objects, made through crane and removed at the end."""

    def __init__(self) -> None:
        self.made: list[tuple[Target, str]] = []

    def create(
        self, target: Target, *specs: ServiceSpec, owner: str = "", state: str = Deployment.State.RUNNING
    ) -> Deployment:
        deployment_id = new_deployment_id()[:24]
        self.made.append((target, deployment_id))
        deployment = Deployment.objects.create(
            id=deployment_id,
            name=f"monitored {deployment_id}",
            owner=owner,
            target=target,
            template=b"",
            template_filename="template.yaml",
            template_sha256="0" * 64,
            state=state,
        )
        if specs:
            driver.ensure_network(target, deployment_id)
            driver.ensure_services(target, deployment_id, specs)
        return deployment

    def remove_all(self) -> None:
        for target, deployment_id in self.made:
            try:
                driver.remove_deployment(target, deployment_id, timeout=30)
            except Exception:
                sweep(deployment_id)


@pytest.fixture
def monitored(transactional_db: None) -> Iterator[Deployments]:
    made = Deployments()
    yield made
    made.remove_all()


@pytest.fixture
def swarm(transactional_db: None) -> Target:
    if not SWARM:
        pytest.skip("the local Docker daemon is not an active swarm manager")
    return make_target(Target.Mode.SWARM)


@pytest.fixture
def engine(transactional_db: None) -> Target:
    return make_target(Target.Mode.ENGINE)


@pytest.fixture
def owner(transactional_db: None) -> Organization:
    return OrganizationFactory.create(
        slug="monitored-town",
        name="Monitored Town",
        kind=Organization.Kind.PUBLIC_ADMINISTRATION,
        email="ops@town.example",
    )


@pytest.fixture
def followers() -> Iterator[list[LogFollowers]]:
    """Log followers a test starts; all stopped at its end."""
    started: list[LogFollowers] = []
    yield started
    for follower in started:
        follower.stop(timeout=10)


class CuttableProxy:
    """A TCP forwarder to the database that a test can cut (every connection dropped, new ones refused)
    and restore: a database outage seen from one process only."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open.clear()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for end in sockets:
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.server.close()
