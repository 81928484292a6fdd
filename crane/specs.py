"""What crane is asked to run and what it reports back: frozen dataclasses, no Docker.

A ServiceSpec describes one node of a deployment the way Agora knows it. It has
no field for anything Agora refuses (privileged mode, host namespaces, binds,
devices, capabilities); whatever a template asks beyond these fields travels in
`options`, where crane/policy.py admits only what it lists.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class UpdateOrder(StrEnum):
    START_FIRST = "start-first"
    STOP_FIRST = "stop-first"


@dataclass(frozen=True)
class Port:
    """A container port to publish; the host port comes from the target's range."""

    target: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class HealthCheck:
    """Docker's health check; `test` as Docker takes it: ("CMD", ...), ("CMD-SHELL", "...") or ("NONE",)."""

    test: tuple[str, ...]
    interval: float = 30.0  # seconds
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0


@dataclass(frozen=True)
class Mount:
    """A volume of the deployment (its name as given to ensure_volume) at a path in the container."""

    volume: str
    path: str
    read_only: bool = False


@dataclass(frozen=True)
class SecretMount:
    """A secret of the deployment (its name as given to ensure_secret) as /run/secrets/<file>."""

    secret: str
    file: str


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # the node's name in the template; unique within the deployment
    image: str
    command: tuple[str, ...] = ()  # arguments, replacing the image's CMD
    entrypoint: tuple[str, ...] | None = None  # replaces the image's ENTRYPOINT when set
    environment: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    replicas: int = 1
    cpu_limit: float | None = None  # CPUs; None: the target's or Agora's default
    memory_limit: int | None = None  # bytes; None: the target's or Agora's default
    cpu_reservation: float = 0.0
    memory_reservation: int = 0
    healthcheck: HealthCheck | None = None
    mounts: tuple[Mount, ...] = ()
    secrets: tuple[SecretMount, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)  # the publisher's; never "agora."
    update_order: UpdateOrder = UpdateOrder.STOP_FIRST
    update_parallelism: int = 1
    # Any other Docker setting the template asked for, by its docker-py name; the policy admits a few.
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildContext:
    """A directory the caller has extracted (a CSAR's artifact), and the Dockerfile inside it."""

    directory: Path
    dockerfile: str = "Dockerfile"


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class Kind(StrEnum):
    NETWORK = "network"
    VOLUME = "volume"
    SECRET = "secret"  # noqa: S105 - a kind, not a password
    IMAGE = "image"
    SERVICE = "service"


@dataclass(frozen=True)
class Endpoint:
    """Where a node's container port is reachable from outside."""

    target_port: int
    protocol: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Ensured:
    """What an ensure call found or did."""

    kind: Kind
    name: str  # Docker's name (for an image, the reference to run)
    id: str
    action: Action
    endpoints: tuple[Endpoint, ...] = ()
    containers: tuple[str, ...] = ()  # engine mode: the node's containers


@dataclass(frozen=True)
class NodeStatus:
    node: str
    desired: int
    running: int  # running, and healthy when the node has a health check
    last_error: str = ""

    @property
    def ready(self) -> bool:
        return self.running >= self.desired


@dataclass(frozen=True)
class DeploymentObjects:
    """Docker objects carrying a deployment's label, by name."""

    services: tuple[str, ...] = ()
    containers: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    images: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.services or self.containers or self.networks or self.volumes or self.secrets or self.images)


@dataclass(frozen=True)
class ContainerStats:
    container: str
    cpu_percent: float  # of one CPU: 150.0 is one and a half CPUs
    memory_bytes: int
    memory_limit: int
    network_rx_bytes: int
    network_tx_bytes: int
    pids: int
    read_at: datetime.datetime | None


@dataclass(frozen=True)
class LogLine:
    source: str  # the container or task it came from
    time: datetime.datetime | None
    message: str
