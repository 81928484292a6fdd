"""The collector: every interval, one round per target; beside it, one log follower per container.

A round (`collect_round`) checks the target (the dependability timeline), reads Agora's containers
on it (crane/observe.py), writes one metric sample per running container in one batch (all with
the round's time, so a node's containers add up), judges and records each deployment's health,
evaluates the alert rules and records the collector's heartbeat. A target that does not answer
gets a TargetHealth row saying so and its deployments' health becomes `unknown`; the deployments'
own states are never touched.

Logs (`LogFollowers`) are followed with one thread per container, reading Docker's stream with
timestamps. Lines are batched to the store about every second, in the same database transaction
as the container's LogCursor, so what is stored and where reading resumes never disagree.
The cursor is (S, n): S a whole second, n the lines already stored whose time is at or after S.
Resuming asks Docker for the lines since S (whole seconds: nothing lost to rounding) and skips
the first n, which are exactly those lines because Docker returns them in the same order every
time. This holds even when stdout and stderr lines are stamped slightly out of order. Each line also
carries a key (`line_key`: container, second, place in that second) that a re-read gives it again, so
Elasticsearch, whose writes are outside that transaction, overwrites a line stored twice.

Log levels are guessed from the line: the first of the words critical/fatal/panic/emerg,
error/err/severe, warn/warning, info/notice, debug/trace in its first 120 characters
(case-insensitive, whole words); otherwise warning for stderr and info for stdout.
"""

from __future__ import annotations

import datetime
import logging
import queue
import re
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from crane import names, observe, targets
from crane.errors import CraneError, TargetUnreachable
from crane.models import Target
from crane.observe import ObservedContainer, Reading
from monitoring import alerts
from monitoring.health import node_facts, percent_of_limit, record_deployments, record_target, unreachable_since
from monitoring.models import CollectorHeartbeat, LogCursor, TargetHealth
from monitoring.store import Line, Sample, get_store
from orchestrator.models import Deployment

log = logging.getLogger(__name__)

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
ONE_SECOND = datetime.timedelta(seconds=1)
MAX_RESTART_TIMES = 100  # per engine container: enough for any rule's threshold
LIVE_STATES = frozenset({"running", "restarting", "paused"})

_LEVEL = re.compile(
    r"\b(?:(crit|critical|fatal|panic|emerg|emergency)|(err|error|severe)|(warn|warning)|(info|notice)|(debug|trace))\b",
    re.IGNORECASE,
)
_LEVEL_NAMES = ("critical", "error", "warning", "info", "debug")


def line_level(message: str, stream: str) -> str:
    """The level a line states, or a guess from its stream (see the module's docstring)."""
    match = _LEVEL.search(message[:120])
    if match is not None and match.lastindex is not None:
        return _LEVEL_NAMES[match.lastindex - 1]
    return "warning" if stream == "stderr" else "info"


def ours(container: ObservedContainer) -> bool:
    """Labelled by Agora: other values would not fit the store (and are nobody's deployment)."""
    return bool(names.DEPLOYMENT.match(container.deployment)) and 0 < len(container.node) <= 64


def default_name(target: Target) -> str:
    return f"{socket.gethostname()}/{target.name}"[:100]


# --- rounds


@dataclass
class RoundMemory:
    """What a collector remembers of one target between rounds (lost on restart, by design harmless)."""

    readings: dict[str, Reading] = field(default_factory=dict)  # the last stats of each container, for CPU
    restarts: dict[str, tuple[int, tuple[datetime.datetime, ...]]] = field(default_factory=dict)
    windows: alerts.Windows = field(default_factory=alerts.Windows)

    def restart_times(
        self, containers: Sequence[ObservedContainer], now: datetime.datetime
    ) -> dict[str, tuple[datetime.datetime, ...]]:
        """Known restart moments of engine containers (swarm tasks say their own). Docker keeps only a count
        and the last start; each increase seen is a restart, and on first sight the last start is one."""
        result: dict[str, tuple[datetime.datetime, ...]] = {}
        for container in containers:
            if container.task_id:
                continue
            seen = self.restarts.get(container.id)
            if container.state not in LIVE_STATES:  # not inspected this round: keep what was known
                if seen is not None:
                    result[container.id] = seen[1]
                continue
            times = list(seen[1]) if seen is not None else []
            last_start = container.started_at or now
            if seen is None:
                if container.restarts:
                    times.append(last_start)
            elif container.restarts > seen[0]:
                times.extend([last_start] * (container.restarts - seen[0]))
            result[container.id] = tuple(times[-MAX_RESTART_TIMES:])
            self.restarts[container.id] = (container.restarts, result[container.id])
        for gone in set(self.restarts) - {c.id for c in containers}:
            del self.restarts[gone]
        return result


@dataclass(frozen=True)
class RoundReport:
    target: str
    time: datetime.datetime
    reachable: bool
    error: str
    containers: tuple[ObservedContainer, ...]
    samples: int
    health: dict[str, str]  # by deployment id
    raised: int
    resolved: int
    seconds: float

    def summary(self) -> str:
        if not self.reachable:
            return f"{self.target}: unreachable ({self.error}); {len(self.health)} deployment(s) unknown"
        states: dict[str, int] = {}
        for health in self.health.values():
            states[health] = states.get(health, 0) + 1
        shown = ", ".join(f"{count} {health}" for health, count in sorted(states.items())) or "no deployment"
        alerts_moved = f"; alerts +{self.raised} -{self.resolved}" if self.raised or self.resolved else ""
        return (
            f"{self.target}: {len(self.containers)} container(s), {self.samples} sample(s), {shown}{alerts_moved} "
            f"in {self.seconds:.2f} s" + (f" ({self.error})" if self.error else "")
        )


def collect_round(
    target: Target,
    *,
    memory: RoundMemory | None = None,
    collector: str = "",
    interval: float | None = None,
    now: datetime.datetime | None = None,
) -> RoundReport:
    """One pass over the target (see the module's docstring)."""
    memory = memory if memory is not None else RoundMemory()
    interval = float(interval if interval is not None else settings.AGORA_MONITOR_INTERVAL)
    started = time.monotonic()
    now = now or timezone.now()
    check = targets.target_check(target)
    reachable = check.state != Target.State.UNREACHABLE
    error = check.error
    observation = capacity = None
    if reachable:
        try:
            observation = observe.observe(target)
            capacity = observe.capacity(target)
        except TargetUnreachable as exc:  # went away between the check and the reads
            reachable, error = False, exc.message
            check = targets.TargetCheck(target.name, Target.State.UNREACHABLE, check.seconds, error=exc.message)
        except CraneError as exc:  # it answered, with an error: nothing known of its deployments this round
            error, observation = exc.message, None
    deployments = list(Deployment.objects.filter(target=target).exclude(state=Deployment.State.REMOVED))
    containers: tuple[ObservedContainer, ...] = ()
    facts = None
    samples: list[Sample] = []
    if observation is not None:
        containers = tuple(c for c in observation.containers if ours(c))
        cpu: dict[str, float | None] = {}
        used: dict[str, float | None] = {}
        for container in containers:
            reading = observation.readings.get(container.id)
            if reading is None:
                continue
            previous = memory.readings.get(container.id)
            if previous is not None and container.started_at is not None and previous.read_at < container.started_at:
                previous = None  # restarted since: its counters started again
            cpu[container.id] = observe.cpu_percent(reading, previous, container.started_at)
            used[container.id] = percent_of_limit(reading.memory_bytes, reading.memory_limit)
            samples.append(_sample(container, reading, cpu[container.id], observation.tasks, now))
        memory.readings = dict(observation.readings)
        facts = node_facts(
            containers,
            {key: value for key, value in observation.tasks.items() if names.DEPLOYMENT.match(key[0])},
            cpu=cpu,
            memory=used,
            restart_times=memory.restart_times(containers, now),
        )
        get_store().write_samples(samples)
    health = record_deployments(deployments, facts, now=now, error=error)
    record_target(target, check, capacity, now=now)
    changes = alerts.evaluate(
        target,
        deployments,
        facts,
        memory.windows,
        now=now,
        unreachable_since=unreachable_since(target),
        error=error,
        stale_after=3 * interval,
    )
    seconds = time.monotonic() - started
    name = collector or default_name(target)
    others = CollectorHeartbeat.objects.filter(target=target, last_round_at__gte=now - 3 * ONE_SECOND * interval)
    for other in others.exclude(name=name).values_list("name", flat=True):
        log.warning('collector "%s" watches target %s too: its log lines are stored twice', other, target.name)
    CollectorHeartbeat.objects.update_or_create(
        name=name,
        defaults={"target": target, "last_round_at": now, "round_seconds": seconds, "containers": len(containers)},
    )
    return RoundReport(
        target=target.name,
        time=now,
        reachable=reachable,
        error=error,
        containers=containers,
        samples=len(samples),
        health=health,
        raised=len(changes.raised),
        resolved=len(changes.resolved),
        seconds=seconds,
    )


def _sample(
    container: ObservedContainer,
    reading: Reading,
    cpu: float | None,
    tasks: dict[tuple[str, str], observe.NodeTasks],
    now: datetime.datetime,
) -> Sample:
    task = tasks.get((container.deployment, container.node))
    if task is not None:
        restarts = task.ended_by_slot.get(container.slot, 0) if container.slot is not None else len(task.ended)
    else:
        restarts = container.restarts
    return Sample(
        time=now,
        deployment_id=container.deployment,
        node=container.node,
        container=container.name[:128],
        cpu_percent=cpu,
        memory_bytes=reading.memory_bytes,
        memory_limit=reading.memory_limit or None,
        network_rx_bytes=reading.network_rx_bytes,
        network_tx_bytes=reading.network_tx_bytes,
        block_read_bytes=reading.block_read_bytes,
        block_write_bytes=reading.block_write_bytes,
        restarts=restarts,
    )


def purge(*, now: datetime.datetime, targets_watched: Iterable[Target], live: Iterable[str]) -> int:
    """Removes what is older than AGORA_MONITORING_RETENTION_DAYS: samples and lines, the targets' health
    timeline, and log cursors of containers that are gone. Returns the samples and lines removed."""
    cutoff = now - datetime.timedelta(days=settings.AGORA_MONITORING_RETENTION_DAYS)
    removed = get_store().purge(older_than=cutoff)
    watched = list(targets_watched)
    TargetHealth.objects.filter(target__in=watched, time__lt=cutoff).delete()
    mine = Deployment.objects.filter(target__in=watched).values("pk")
    old = LogCursor.objects.filter(updated_at__lt=cutoff, deployment_id__in=mine)
    old.exclude(container_id__in=list(live)).delete()
    return removed


# --- logs


def _second(moment: datetime.datetime) -> int:
    return (moment - EPOCH) // ONE_SECOND


# A follower counts the lines of each second for their keys, and forgets the seconds further behind the
# newest than this: stdout and stderr are never stamped that far apart.
KEY_SECONDS_KEPT = 60


def line_key(container_id: str, second: int, place: int) -> str:
    """A log line's identity (Line.key): its container, the second it is stamped in, and its place among
    the lines stamped in that second, counted in Docker's order. Stable across a re-read: resuming from
    a cursor (S, n) asks Docker for every line since S, in the same order, so every line stamped in S or
    later is counted again from the same start (the n skipped lines included). Distinct for distinct
    lines, also the same text printed twice in one second."""
    return f"{container_id}/{second}/{place}"


@dataclass(frozen=True)
class _Queued:
    container: ObservedContainer
    line: Line
    second: int  # the cursor after this line: (S, n)
    count: int


class LogFollowers:
    """One thread per container reading its log; one writer storing the lines with their cursors.

    `sync()` after each round starts followers for containers not followed yet (a stopped container is
    read once to its end); `flush()` waits until what was read is stored; `stop()` ends it all, storing
    what was read. With `follow=False` each follower reads what is there and ends (`manage.py monitor
    --once`)."""

    def __init__(
        self, *, follow: bool = True, flush_seconds: float = 1.0, batch: int = 5000, max_queued: int = 50_000
    ) -> None:
        self.follow = follow
        self.flush_seconds = flush_seconds
        self.batch = batch
        self._queue: queue.Queue[_Queued] = queue.Queue(maxsize=max_queued)
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._streams: dict[str, observe.LogStream] = {}
        self._positions: dict[str, tuple[int | None, int]] = {}  # read so far (stored, or queued to be)
        self._drained: dict[str, str] = {}  # container id -> the state it had when read to its end
        self._target_of: dict[str, int] = {}
        self._stopping = threading.Event()  # followers: stop reading
        self._closing = threading.Event()  # writer: store what is queued, then end
        self._abandon = threading.Event()  # writer: end now, even with lines unstored
        self._writer = threading.Thread(target=self._write_forever, name="log-writer", daemon=True)
        self._writer.start()

    # followers

    def sync(self, target: Target, containers: Iterable[ObservedContainer]) -> int:
        """Follows the target's containers; returns how many followers started."""
        listed = {c.id: c for c in containers if ours(c) and c.state in LIVE_STATES | {"exited", "dead"}}
        with self._lock:
            for known in [cid for cid, pk in self._target_of.items() if pk == target.pk and cid not in listed]:
                self._positions.pop(known, None)
                self._drained.pop(known, None)
                self._target_of.pop(known, None)
                if known in self._threads and not self._threads[known].is_alive():
                    del self._threads[known]
            wanted = [
                c
                for c in listed.values()
                if not (c.id in self._threads and self._threads[c.id].is_alive())
                and not (c.state not in LIVE_STATES and self._drained.get(c.id) == c.state)
            ]
            unknown = [c.id for c in wanted if c.id not in self._positions]
        if self._stopping.is_set() or not wanted:
            return 0
        stored = {
            cursor.container_id: cursor for cursor in LogCursor.objects.filter(container_id__in=unknown)
        }  # a new process resumes where the last one stored
        for container in wanted:
            with self._lock:
                if container.id not in self._positions:
                    cursor = stored.get(container.id)
                    if cursor is not None and cursor.last_time is not None:
                        self._positions[container.id] = (_second(cursor.last_time), cursor.lines_at_last_time)
                    else:
                        self._positions[container.id] = (None, 0)
                self._target_of[container.id] = target.pk
                thread = threading.Thread(
                    target=self._follow,
                    args=(target, container, *self._positions[container.id]),
                    name=f"log-{container.name}"[:60],
                    daemon=True,
                )
                self._threads[container.id] = thread
            thread.start()
        return len(wanted)

    def _follow(self, target: Target, container: ObservedContainer, second: int | None, count: int) -> None:
        try:
            stream = observe.open_logs(target, container.id, since=second, follow=self.follow)
        except CraneError as exc:
            log.info("cannot read the log of %s: %s", container.name, exc.message)
            return
        with self._lock:
            self._streams[container.id] = stream
        if self._stopping.is_set():
            stream.close()
        skip = count
        start = EPOCH + ONE_SECOND * second if second is not None else None
        times: list[datetime.datetime] = []  # of the lines read whose time is at or after the cursor's second
        in_second: dict[int, int] = {}  # lines read so far stamped within each second (see line_key)
        previous = start or EPOCH
        ended = False
        try:
            for entry in stream:
                moment = entry.time or previous  # Docker always stamps; keep order if a stamp is unreadable
                previous = moment
                own = _second(moment)
                place = in_second.get(own, 0)
                in_second[own] = place + 1
                if skip:
                    skip -= 1
                    times.append(moment)
                    continue
                if second is None or own > second:
                    second = own
                    start = EPOCH + ONE_SECOND * second
                    times = [t for t in times if t >= start]
                    for stale in [s for s in in_second if s < second - KEY_SECONDS_KEPT]:
                        del in_second[stale]
                if start is not None and moment >= start:
                    times.append(moment)
                line = Line(
                    time=moment,
                    message=entry.message,
                    deployment_id=container.deployment,
                    node=container.node,
                    container=container.name[:128],
                    source="docker",
                    stream=entry.stream,
                    level=line_level(entry.message, entry.stream),
                    key=line_key(container.id, own, place),
                )
                if not self._put(_Queued(container, line, second, len(times))):
                    return  # stopping with the queue full: the stored cursor still points before this line
                with self._lock:
                    self._positions[container.id] = (second, len(times))
            ended = not stream.closed
        except Exception:
            log.exception("following the log of %s failed; it is read again from its cursor", container.name)
        finally:
            stream.close()
            with self._lock:
                self._streams.pop(container.id, None)
                if ended:
                    self._drained[container.id] = container.state

    def _put(self, item: _Queued) -> bool:
        while True:
            try:
                self._queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                if self._stopping.is_set():
                    return False

    def wait(self, timeout: float = 30.0) -> bool:
        """Until every follower has ended (with follow=False: read to the end); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)

    def flush(self, timeout: float = 30.0) -> bool:
        """Until every line read so far is stored; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._writer.is_alive():
                    return False
                self._queue.all_tasks_done.wait(min(remaining, 0.5))
        return True

    def stop(self, timeout: float = 15.0) -> bool:
        """Stops reading, stores what was read (within `timeout`); False if some of it could not be stored."""
        self._stopping.set()
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.close()
        self.wait(timeout=min(5.0, timeout))
        stored = self.flush(timeout=timeout)
        self._closing.set()
        if not stored:
            self._abandon.set()  # the cursors were not advanced either: the next collector reads them again
        self._writer.join(timeout=5)
        return stored

    @property
    def following(self) -> int:
        with self._lock:
            return sum(1 for thread in self._threads.values() if thread.is_alive())

    # the writer

    def _write_forever(self) -> None:
        failures = 0
        pending: list[_Queued] = []
        try:
            while not self._abandon.is_set():
                if not pending:
                    try:
                        pending.append(self._queue.get(timeout=0.2))
                    except queue.Empty:
                        if self._closing.is_set():
                            return
                        continue
                    # Gather for a moment: one transaction for many lines costs less than one per line.
                    # (Not when a full batch is already waiting: then the writer must keep up.)
                    if not self._closing.is_set() and self._queue.qsize() < self.batch:
                        self._closing.wait(self.flush_seconds)
                    while len(pending) < self.batch:
                        try:
                            pending.append(self._queue.get_nowait())
                        except queue.Empty:
                            break
                try:
                    self._store(pending)
                except Exception as exc:
                    failures += 1
                    log.warning("storing %d log line(s) failed (%s); trying again", len(pending), exc)
                    connection.close()
                    self._abandon.wait(min(2.0**failures, 30.0))
                    continue
                for _ in pending:
                    self._queue.task_done()
                pending, failures = [], 0
        finally:
            for _ in pending:
                self._queue.task_done()
            connection.close()

    def _store(self, batch: Sequence[_Queued]) -> None:
        last: dict[str, _Queued] = {}
        for item in batch:
            last[item.container.id] = item
        now = timezone.now()
        with transaction.atomic():
            get_store().write_lines([item.line for item in batch])
            LogCursor.objects.bulk_create(
                [
                    LogCursor(
                        container_id=cid,
                        deployment_id=item.container.deployment,
                        node=item.container.node,
                        last_time=EPOCH + ONE_SECOND * item.second,
                        lines_at_last_time=item.count,
                        updated_at=now,
                    )
                    for cid, item in last.items()
                ],
                update_conflicts=True,
                unique_fields=["container_id"],
                update_fields=["last_time", "lines_at_last_time", "updated_at"],
            )
