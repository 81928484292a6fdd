"""Crane's fixtures: targets on this machine's Docker, unique deployment ids, and cleanup.

Docker tests run against the real daemon (DOCKER_HOST or the default socket) and are
skipped, saying why, only when no daemon answers. Each test gets its own deployment
id and its own block of published ports (per xdist worker), so that runs in parallel
never collide; whatever a test creates is removed even when the test fails.
"""

from __future__ import annotations

import os
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest

from crane import conf, driver
from crane.models import Target
from crane.specs import HealthCheck, Port, ServiceSpec
from crane.targets import forget_clients

BUSYBOX = "agora/busybox:latest"
MIB = 1024 * 1024


def _daemon() -> tuple[bool, bool]:
    """(a daemon answers, it is an active swarm manager)."""
    try:
        client = docker.DockerClient(base_url=conf.local_endpoint(), version="auto", timeout=3)
    except Exception:
        return False, False
    try:
        swarm = client.info().get("Swarm") or {}
        return True, bool(swarm.get("LocalNodeState") == "active" and swarm.get("ControlAvailable"))
    except Exception:
        return False, False
    finally:
        client.close()


DOCKER, SWARM = _daemon()
needs_docker = pytest.mark.skipif(not DOCKER, reason="no Docker daemon answers at DOCKER_HOST or the default socket")
needs_swarm = pytest.mark.skipif(not SWARM, reason="the local Docker daemon is not an active swarm manager")


@pytest.fixture
def raw() -> Iterator[Any]:
    """A docker client of the test's own, to look at what crane did independently of crane."""
    client = docker.DockerClient(base_url=conf.local_endpoint(), version="auto", timeout=30)
    yield client
    client.close()


def port_block(size: int = 20) -> tuple[int, int]:
    """A block of host ports of this xdist worker, at a random place so that reruns do not reuse it at once."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    # Below Linux's ephemeral range (32768-60999): a port there can be taken at any moment by an outgoing
    # connection or a test's own server, and Docker then fails to publish it. 30000-30999 is the local target's.
    base = 20000 + (index % 4) * 2500
    start = base + random.randrange(0, 2500 // size - 1) * size  # noqa: S311 - spreading ports, not a secret
    return start, start + size - 1


def make_target(mode: str, **fields: Any) -> Target:
    start, end = port_block()
    values: dict[str, Any] = {
        "name": f"{mode}-{uuid.uuid4().hex[:8]}",
        "provider": "on-premises",
        "public_host": "127.0.0.1",
        "endpoint": conf.local_endpoint(),
        "mode": mode,
        "port_range_start": start,
        "port_range_end": end,
    }
    values.update(fields)
    return Target.objects.create(**values)


@pytest.fixture
def swarm_target(db: None) -> Target:
    return make_target(Target.Mode.SWARM)


@pytest.fixture
def engine_target(db: None) -> Target:
    return make_target(Target.Mode.ENGINE)


@pytest.fixture(params=[Target.Mode.SWARM, Target.Mode.ENGINE])
def target(request: pytest.FixtureRequest, db: None) -> Target:
    if request.param == Target.Mode.SWARM and not SWARM:
        pytest.skip("the local Docker daemon is not an active swarm manager")
    return make_target(request.param)


def new_deployment_id() -> str:
    return "t" + uuid.uuid4().hex[:12]


def sweep(deployment: str) -> None:
    """Remove by label whatever crane left behind, without crane (when its own removal failed)."""
    client = docker.DockerClient(base_url=conf.local_endpoint(), version="auto", timeout=30)
    selector = {"label": f"agora.deployment={deployment}"}
    try:
        if SWARM:
            for service in client.api.services(filters=selector):
                client.api.remove_service(service["ID"])
        for _ in range(50):
            for container in client.api.containers(all=True, filters=selector):
                client.api.remove_container(container["Id"], force=True)
            left = client.api.containers(all=True, filters=selector)
            for network in client.api.networks(filters=selector):
                try:
                    client.api.remove_network(network["Id"])
                except docker.errors.APIError:
                    left.append(network)
            for volume in client.api.volumes(filters=selector).get("Volumes") or []:
                try:
                    client.api.remove_volume(volume["Name"])
                except docker.errors.APIError:
                    left.append(volume)
            if SWARM:
                for secret in client.api.secrets(filters=selector):
                    try:
                        client.api.remove_secret(secret["ID"])
                    except docker.errors.APIError:
                        left.append(secret)
            if not left:
                break
            time.sleep(0.2)
    finally:
        client.close()


class Deployments:
    """Deployment ids handed out by a test, all removed at its end."""

    def __init__(self) -> None:
        self.made: list[tuple[Target, str]] = []

    def new(self, target: Target) -> str:
        deployment = new_deployment_id()
        self.made.append((target, deployment))
        return deployment

    def remove_all(self) -> None:
        for target, deployment in self.made:
            try:
                driver.remove_deployment(target, deployment)
            except Exception:
                sweep(deployment)


@pytest.fixture
def deployments() -> Iterator[Deployments]:
    made = Deployments()
    yield made
    made.remove_all()


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    yield
    forget_clients()


def web(name: str = "web", **fields: Any) -> ServiceSpec:
    """busybox httpd serving "hello <name>" on port 80, with a health check; stops within a second."""
    values: dict[str, Any] = {
        "name": name,
        "image": BUSYBOX,
        "command": (
            "sh",
            "-c",
            'echo "serving $GREETING"; mkdir -p /www && echo "hello $GREETING" > /www/index.html && '
            "exec httpd -f -p 80 -h /www",
        ),
        "environment": {"GREETING": name},
        "ports": (Port(80),),
        "cpu_limit": 0.25,
        "memory_limit": 32 * MIB,
        "healthcheck": HealthCheck(test=("CMD-SHELL", "nc -w 1 127.0.0.1 80 </dev/null"), interval=0.5, timeout=2),
        "options": {"init": True, "stop_grace_period": 1},
    }
    values.update(fields)
    return ServiceSpec(**values)


def http_get(url: str, *, timeout: float = 30.0) -> str:
    """The body at url, polling until it answers (a bounded loop)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a test's own URL
                return str(response.read().decode())
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s: {last}")


def containers_of(client: Any, deployment: str, node: str | None = None) -> list[Any]:
    labels = [f"agora.deployment={deployment}", "agora.kind=service"] + ([f"agora.node={node}"] if node else [])
    return list(client.containers.list(filters={"label": labels}))
