"""What the monitoring collector reads from a target: containers, their resource counters, swarm tasks,
capacity and logs. Plain dataclasses out; crane knows nothing of the monitoring app.

One round of `observe()` makes one container list call (Agora's service containers on this target,
by label), then inspects and samples the running ones in parallel with a bounded pool, and, on
swarm targets, reads the target's services and all their tasks in two more calls. Stats are read
with `one-shot` (API 1.41): the daemon answers at once instead of waiting a second for a second
reading, and the caller computes CPU use from its own previous reading (`cpu_percent`).

Logs are read by `open_logs`, one stream per container. The SDK's `logs()` merges stdout and
stderr and drops which one a frame came from, so this reads the same endpoint with the SDK's
own request helpers and keeps the stream byte of Docker's frame header.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import docker.errors  # type: ignore[import-untyped]
from docker.types.daemon import CancellableStream  # type: ignore[import-untyped]

from crane import names
from crane.driver import NS, _timestamp, memory_used, network_bytes, used_capacity
from crane.errors import docker_errors
from crane.models import Target
from crane.specs import Kind
from crane.targets import client_for

# Parallel reads of one round. A stats call waits for the daemon's next sampling tick (every second,
# even with one-shot): calls made together share a tick, so a round takes about containers/this seconds.
MAX_PARALLEL_READS = 64
# Swarm task states after which the task's slot got (or gets) a new task: each one is a restart.
ENDED_STATES = frozenset({"failed", "complete", "rejected", "orphaned"})
STARTING_STATES = frozenset({"new", "pending", "assigned", "accepted", "preparing", "ready", "starting"})
_FRAME_HEADER = 8
_STREAMS = {1: "stdout", 2: "stderr"}


@dataclass(frozen=True)
class ObservedContainer:
    id: str
    name: str
    deployment: str
    node: str
    state: str  # Docker's: running, restarting, exited, created, paused, dead
    health: str = ""  # healthy, unhealthy, starting; "" without a health check (or not running)
    restarts: int = 0  # restarts of this container by the engine's restart policy (RestartCount)
    started_at: datetime.datetime | None = None
    task_id: str = ""  # swarm: the task the container runs
    slot: int | None = None  # swarm: the replica slot of that task
    replicas: int | None = None  # engine: how many containers the node should have (its label)
    tty: bool = False

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class Reading:
    """One-shot counters of one running container, as the stats API gives them."""

    container_id: str
    read_at: datetime.datetime
    cpu_ns: int  # CPU time used since the container started
    memory_bytes: int  # page cache left out, as `docker stats` does
    memory_limit: int
    network_rx_bytes: int
    network_tx_bytes: int
    block_read_bytes: int
    block_write_bytes: int
    pids: int


@dataclass(frozen=True)
class NodeTasks:
    """A swarm service's tasks: how many should run, how many do, and when earlier ones ended."""

    deployment: str
    node: str
    desired: int
    running: int
    starting: int
    ended: tuple[datetime.datetime, ...] = ()  # each a task that failed or exited, so was replaced: a restart
    ended_by_slot: dict[int, int] = field(default_factory=dict)
    last_error: str = ""


@dataclass(frozen=True)
class Observation:
    containers: tuple[ObservedContainer, ...]
    readings: dict[str, Reading]  # by container id, running containers only
    tasks: dict[tuple[str, str], NodeTasks]  # by (deployment, node); swarm targets only
    read_at: datetime.datetime


@dataclass(frozen=True)
class Capacity:
    cpus_total: float | None
    memory_total: int | None
    cpus_used: float  # limits of Agora's services on the target (replicas counted)
    memory_used: int
    containers_running: int


# --- containers, stats, tasks


def observe(target: Target, *, parallel: int = MAX_PARALLEL_READS) -> Observation:
    """Everything one collector round needs from the target (see the module's docstring)."""
    client = client_for(target)
    selector = {
        "label": [names.LABEL_DEPLOYMENT, f"{names.LABEL_TARGET}={target.name}", f"{names.LABEL_KIND}={Kind.SERVICE}"]
    }
    read_at = datetime.datetime.now(datetime.UTC)
    with docker_errors(target.name, "list Agora's containers"):
        listed = client.api.containers(all=True, filters=selector)

    def read(item: dict[str, Any]) -> tuple[ObservedContainer, Reading | None] | None:
        with docker_errors(target.name, f"read container {item['Id'][:12]}"):
            try:
                return _read_container(client, item)
            except docker.errors.NotFound:
                return None  # removed since the list was made

    if len(listed) <= 1:
        results = [read(item) for item in listed]
    else:
        with ThreadPoolExecutor(max_workers=min(parallel, len(listed)), thread_name_prefix="observe") as pool:
            results = list(pool.map(read, listed))
    containers = tuple(result[0] for result in results if result is not None)
    readings = {r[1].container_id: r[1] for r in results if r is not None and r[1] is not None}
    tasks: dict[tuple[str, str], NodeTasks] = {}
    if target.mode == Target.Mode.SWARM:
        with docker_errors(target.name, "read the swarm tasks of Agora's services"):
            tasks = _swarm_tasks(client, target)
    return Observation(containers=containers, readings=readings, tasks=tasks, read_at=read_at)


def _read_container(client: Any, item: dict[str, Any]) -> tuple[ObservedContainer, Reading | None]:
    labels = item.get("Labels") or {}
    state = str(item.get("State", ""))
    base = {
        "id": item["Id"],
        "name": item["Names"][0].lstrip("/"),
        "deployment": labels.get(names.LABEL_DEPLOYMENT, ""),
        "node": labels.get(names.LABEL_NODE, ""),
        "task_id": labels.get("com.docker.swarm.task.id", ""),
        "replicas": int(labels[names.LABEL_REPLICAS]) if labels.get(names.LABEL_REPLICAS, "").isdigit() else None,
    }
    if state not in ("running", "restarting", "paused"):
        # Exited containers (earlier swarm tasks) are listed only: their logs are read once, nothing else.
        return ObservedContainer(state=state, **base), None
    details = client.api.inspect_container(item["Id"])
    status = details.get("State") or {}
    config = details.get("Config") or {}
    slot = _slot(str((config.get("Labels") or {}).get("com.docker.swarm.task.name", "")))
    container = ObservedContainer(
        state=str(status.get("Status", state)),
        health=str((status.get("Health") or {}).get("Status", "")),
        restarts=int(details.get("RestartCount") or 0),
        started_at=_timestamp(str(status.get("StartedAt", ""))),
        slot=slot,
        tty=bool(config.get("Tty")),
        **base,
    )
    if container.state != "running":
        return container, None
    return container, _reading(item["Id"], client.api.stats(item["Id"], stream=False, one_shot=True))


def _slot(task_name: str) -> int | None:
    # Swarm names a replicated service's task <service>.<slot>.<task id>.
    parts = task_name.split(".")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None


def _reading(container_id: str, raw: dict[str, Any]) -> Reading:
    cpu = raw.get("cpu_stats") or {}
    memory = raw.get("memory_stats") or {}
    received, sent = network_bytes(raw)
    block_read = block_write = 0
    for entry in (raw.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        operation = str(entry.get("op", "")).lower()
        if operation == "read":
            block_read += int(entry.get("value", 0))
        elif operation == "write":
            block_write += int(entry.get("value", 0))
    return Reading(
        container_id=container_id,
        read_at=_timestamp(str(raw.get("read", ""))) or datetime.datetime.now(datetime.UTC),
        cpu_ns=int((cpu.get("cpu_usage") or {}).get("total_usage", 0)),
        memory_bytes=memory_used(memory),
        memory_limit=int(memory.get("limit", 0)),
        network_rx_bytes=received,
        network_tx_bytes=sent,
        block_read_bytes=block_read,
        block_write_bytes=block_write,
        pids=int((raw.get("pids_stats") or {}).get("current", 0)),
    )


def cpu_percent(current: Reading, previous: Reading | None, started_at: datetime.datetime | None) -> float | None:
    """CPU use between two readings in percent of one CPU (150 is one and a half CPUs).

    Without an earlier reading of the same run of the container, the average since it started.
    """
    if previous is not None and previous.cpu_ns <= current.cpu_ns:
        used, since = current.cpu_ns - previous.cpu_ns, previous.read_at
    elif started_at is not None:
        used, since = current.cpu_ns, started_at
    else:
        return None
    elapsed = (current.read_at - since).total_seconds()
    if elapsed <= 0:
        return None
    return round(used / NS / elapsed * 100.0, 2)


def _swarm_tasks(client: Any, target: Target) -> dict[tuple[str, str], NodeTasks]:
    services = client.api.services(
        filters={"label": [f"{names.LABEL_TARGET}={target.name}", f"{names.LABEL_KIND}={Kind.SERVICE}"]}
    )
    if not services:
        return {}
    tasks = client.api.tasks(filters={"service": [s["ID"] for s in services]})
    by_service: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        by_service.setdefault(task["ServiceID"], []).append(task)
    result: dict[tuple[str, str], NodeTasks] = {}
    for service in services:
        spec = service["Spec"]
        labels = spec.get("Labels") or {}
        deployment, node = labels.get(names.LABEL_DEPLOYMENT, ""), labels.get(names.LABEL_NODE, "")
        if not deployment or not node:
            continue
        own = by_service.get(service["ID"], [])
        desired = int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1))
        running = starting = 0
        ended: list[datetime.datetime] = []
        by_slot: dict[int, int] = {}
        for task in own:
            status = task.get("Status") or {}
            state = status.get("State", "")
            if task.get("DesiredState") == "running" and state == "running":
                running += 1
            elif task.get("DesiredState") == "running" and state in STARTING_STATES:
                starting += 1
            if state in ENDED_STATES:
                when = _timestamp(str(status.get("Timestamp", "")))
                if when is not None:
                    ended.append(when)
                slot = task.get("Slot")
                if isinstance(slot, int):
                    by_slot[slot] = by_slot.get(slot, 0) + 1
        result[(deployment, node)] = NodeTasks(
            deployment=deployment,
            node=node,
            desired=desired,
            running=running,
            starting=starting,
            ended=tuple(sorted(ended)),
            ended_by_slot=by_slot,
            last_error=_last_error(own),
        )
    return result


def _last_error(tasks: Sequence[dict[str, Any]]) -> str:
    ended = [t for t in tasks if (t.get("Status") or {}).get("State") in ENDED_STATES]
    ended.sort(key=lambda t: str((t.get("Status") or {}).get("Timestamp", "")), reverse=True)
    for task in ended:
        status = task["Status"]
        if status.get("Err"):
            return str(status["Err"])[:500]
        exit_code = (status.get("ContainerStatus") or {}).get("ExitCode")
        if exit_code is not None:
            return f"task {status.get('State')}: exit code {exit_code}"
    return ""


# --- capacity


def capacity(target: Target) -> Capacity:
    """What the target has (every ready swarm node, or the engine) and what Agora's services take of it."""
    client = client_for(target)
    with docker_errors(target.name, "read the target's capacity"):
        info = client.info()
        cpus_total: float | None = float(info.get("NCPU") or 0) or None
        memory_total: int | None = int(info.get("MemTotal") or 0) or None
        manager = target.mode == Target.Mode.SWARM and bool((info.get("Swarm") or {}).get("ControlAvailable"))
        if manager:
            ready = [n for n in client.api.nodes() if (n.get("Status") or {}).get("State") == "ready"]
            resources = [(n.get("Description") or {}).get("Resources") or {} for n in ready]
            cpus_total = sum(r.get("NanoCPUs", 0) for r in resources) / NS or None
            memory_total = sum(int(r.get("MemoryBytes", 0)) for r in resources) or None
        _, cpus_used, memory_taken = used_capacity(client, target, swarm=manager)
    return Capacity(
        cpus_total=cpus_total,
        memory_total=memory_total,
        cpus_used=round(cpus_used, 3),
        memory_used=memory_taken,
        containers_running=int(info.get("ContainersRunning") or 0),
    )


# --- logs


@dataclass(frozen=True)
class LogEntry:
    stream: str  # stdout or stderr
    time: datetime.datetime | None  # Docker's timestamp, to the microsecond; None if it had none
    message: str


class LogStream:
    """An open log stream of one container; iterate for entries, `close()` from any thread ends it."""

    def __init__(self, response: Any, raw: Any, tty: bool) -> None:
        self._response = response
        self._frames = CancellableStream(_tty_frames(raw) if tty else _frames(raw), response)
        self.closed = False

    def __iter__(self) -> Iterator[LogEntry]:
        while True:
            try:
                stream, data = next(self._frames)
            except StopIteration:
                return
            except Exception:
                if self.closed:
                    return  # close() pulled the socket from under a read: http.client fails in several ways
                raise
            for text in data.decode("utf-8", "replace").splitlines() or [""]:
                stamp, _, message = text.partition(" ")
                when = _timestamp(stamp)
                yield LogEntry(stream, when, message if when else text)

    def close(self) -> None:
        self.closed = True
        with suppress(OSError):  # already closed by the daemon
            self._frames.close()
        self._response.close()


def open_logs(target: Target, container_id: str, *, since: int | None = None, follow: bool = True) -> LogStream:
    """The container's output with timestamps, from `since` (whole seconds since the epoch: the API takes
    fractions, but the SDK's float would round them) or from its start; with `follow`, until it stops."""
    client = client_for(target)
    api = client.api
    params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow), "tail": "all"}
    if since is not None and since > 0:
        params["since"] = since
    with docker_errors(target.name, f"read the log of container {container_id[:12]}"):
        tty = bool((api.inspect_container(container_id).get("Config") or {}).get("Tty"))
        response = api._get(api._url("/containers/{0}/logs", container_id), params=params, stream=True)
        api._raise_for_status(response)
        # As the SDK does for its own streams: a quiet container must not time the stream out.
        api._disable_socket_timeout(api._get_raw_response_socket(response))
    return LogStream(response, response.raw, tty)


def _frames(raw: Any) -> Iterator[tuple[str, bytes]]:
    """Docker's multiplexed framing: a byte for the stream, three zeros, a 4-byte length, the data."""
    while True:
        header = raw.read(_FRAME_HEADER)
        if len(header) < _FRAME_HEADER:
            return
        stream, length = struct.unpack(">BxxxL", header)
        if not length:
            continue
        data = raw.read(length)
        if not data:
            return
        yield _STREAMS.get(stream, "stdout"), data


def _tty_frames(raw: Any) -> Iterator[tuple[str, bytes]]:
    """A container with a TTY has one unframed stream: cut it into lines."""
    pending = b""
    while True:
        chunk = raw.read1(65536) if hasattr(raw, "read1") else raw.read(4096)
        if not chunk:
            if pending:
                yield "stdout", pending
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield "stdout", line
