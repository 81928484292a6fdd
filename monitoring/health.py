"""How a deployment and a target are doing, judged from one collector round.

A node's facts come from its containers (state, health check, restart count) and, on swarm
targets, from its service's tasks (how many should run and do, which ended). A deployment's
health is the worst of its nodes':

- unhealthy: a node should run and has no container up (running and not failing its health check),
  outside a deployment or upgrade in progress;
- degraded: a node runs fewer containers than it should, has one failing its health check, or
  restarted within RECENT_RESTART_SECONDS;
- starting: a node's containers are being created or checked for the first time;
- healthy: every node runs all its containers, healthy where they have a check;
- unknown: the target did not answer (the deployment's own state is left alone: it is not failed).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from crane.models import Target
from crane.observe import Capacity, NodeTasks, ObservedContainer
from crane.targets import TargetCheck
from monitoring.models import DeploymentHealth, TargetHealth
from orchestrator.models import Deployment

Health = DeploymentHealth.Health

# A restart this recent makes a node degraded, even if it runs again.
RECENT_RESTART_SECONDS = 300
# Deployments in these states may lack containers for a while without being unhealthy.
BUSY_STATES = frozenset({Deployment.State.PENDING, Deployment.State.DEPLOYING, Deployment.State.UPDATING})


@dataclass(frozen=True)
class NodeFacts:
    deployment: str
    node: str
    desired: int
    running: int  # up: running, and healthy when the container has a health check
    starting: int
    unhealthy: int  # containers whose health check fails
    restarts: int  # as far as Docker remembers: restart counts, or the swarm tasks that ended
    restart_times: tuple[datetime.datetime, ...] = ()  # known moments of restarts, oldest first
    cpu_percent: float | None = None  # the busiest container, in percent of one CPU
    memory_percent: float | None = None  # the fullest container, in percent of its limit
    last_error: str = ""

    @property
    def last_restart(self) -> datetime.datetime | None:
        return self.restart_times[-1] if self.restart_times else None

    def restarts_since(self, moment: datetime.datetime) -> int:
        return sum(1 for time in self.restart_times if time >= moment)

    def as_json(self) -> dict[str, object]:
        return {
            "desired": self.desired,
            "running": self.running,
            "starting": self.starting,
            "unhealthy": self.unhealthy,
            "restarts": self.restarts,
            "last_restart": self.last_restart.isoformat() if self.last_restart else None,
            "cpu_percent": self.cpu_percent,
            "memory_percent": self.memory_percent,
            "last_error": self.last_error,
        }


def node_facts(
    containers: Sequence[ObservedContainer],
    tasks: dict[tuple[str, str], NodeTasks],
    *,
    cpu: dict[str, float | None],
    memory: dict[str, float | None],
    restart_times: dict[str, tuple[datetime.datetime, ...]],
) -> dict[tuple[str, str], NodeFacts]:
    """Each (deployment, node) seen on the target. `cpu` and `memory` are percents by container id;
    `restart_times` are the known restart moments of engine containers, by container id."""
    grouped: dict[tuple[str, str], list[ObservedContainer]] = {}
    for container in containers:
        grouped.setdefault((container.deployment, container.node), []).append(container)
    facts: dict[tuple[str, str], NodeFacts] = {}
    for key in sorted(set(grouped) | set(tasks)):
        members = grouped.get(key, [])
        live = [c for c in members if c.state in ("running", "restarting", "paused")]
        unhealthy = sum(1 for c in live if c.health == "unhealthy")
        cpu_values = [v for c in live if (v := cpu.get(c.id)) is not None]
        memory_values = [v for c in live if (v := memory.get(c.id)) is not None]
        task = tasks.get(key)
        if task is not None:
            # Swarm: a task with a health check counts as running only once healthy; a failing one is replaced.
            desired, running, starting = task.desired, task.running, task.starting
            times = task.ended
            restarts = len(task.ended)
            last_error = task.last_error
        else:
            desired = max((c.replicas for c in members if c.replicas is not None), default=len(members))
            running = sum(1 for c in live if c.running and c.health in ("", "healthy"))
            starting = sum(1 for c in live if c.health == "starting" or c.state == "restarting")
            times = tuple(sorted(t for c in members for t in restart_times.get(c.id, ())))
            restarts = sum(c.restarts for c in members)
            last_error = f"{unhealthy} container(s) failing their health check" if unhealthy else ""
        facts[key] = NodeFacts(
            deployment=key[0],
            node=key[1],
            desired=desired,
            running=running,
            starting=starting,
            unhealthy=unhealthy,
            restarts=restarts,
            restart_times=times,
            cpu_percent=max(cpu_values) if cpu_values else None,
            memory_percent=max(memory_values) if memory_values else None,
            last_error=last_error,
        )
    return facts


def judge(state: str, nodes: Iterable[NodeFacts], now: datetime.datetime) -> tuple[str, str]:
    """(health, why) of a deployment in `state` whose nodes are `nodes` (see the module's docstring)."""
    nodes = list(nodes)
    busy = state in BUSY_STATES
    if not nodes:
        if busy:
            return Health.STARTING, "no container yet"
        return Health.UNHEALTHY, "no container of this deployment is on its target"
    worst = Health.HEALTHY
    notes: list[str] = []
    recent = now - datetime.timedelta(seconds=RECENT_RESTART_SECONDS)
    for node in nodes:
        if node.desired <= 0:
            continue
        verdict = Health.HEALTHY
        note = ""
        if node.running == 0:
            coming_up = busy or (node.starting and not node.restarts_since(recent))
            verdict = Health.STARTING if coming_up else Health.UNHEALTHY
            note = f"0 of {node.desired} running"
        elif node.running < node.desired or node.unhealthy:
            verdict, note = Health.DEGRADED, f"{node.running} of {node.desired} running"
        elif node.restarts_since(recent):
            verdict, note = Health.DEGRADED, f"restarted {node.restarts_since(recent)} time(s) in the last 5 minutes"
        if node.unhealthy:
            note += f", {node.unhealthy} failing the health check"
        if note:
            notes.append(f"{node.node}: {note}" + (f" ({node.last_error})" if node.last_error else ""))
        worst = max(worst, verdict, key=_SEVERITY.__getitem__)
    return worst, "; ".join(notes)


_SEVERITY = {Health.HEALTHY: 0, Health.STARTING: 1, Health.DEGRADED: 2, Health.UNHEALTHY: 3, Health.UNKNOWN: 4}


def record_deployments(
    deployments: Sequence[Deployment],
    facts: dict[tuple[str, str], NodeFacts] | None,
    *,
    now: datetime.datetime,
    error: str = "",
) -> dict[str, str]:
    """Writes each deployment's DeploymentHealth in one statement; `facts` None means the target did not
    answer (health unknown). Returns the health by deployment id."""
    rows: list[DeploymentHealth] = []
    for deployment in deployments:
        health: str
        nodes: dict[str, object]
        if facts is None:
            health, message, nodes = Health.UNKNOWN, error, {}
        else:
            own = [f for (d, _), f in facts.items() if d == deployment.pk]
            health, message = judge(deployment.state, own, now)
            nodes = {f.node: f.as_json() for f in own}
        rows.append(
            DeploymentHealth(deployment=deployment, health=health, nodes=nodes, message=message, checked_at=now)
        )
    if rows:
        DeploymentHealth.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["deployment"],
            update_fields=["health", "nodes", "message", "checked_at"],
        )
    return {row.deployment_id: row.health for row in rows}


def record_target(
    target: Target, check: TargetCheck, capacity: Capacity | None, *, now: datetime.datetime
) -> TargetHealth:
    """One point of the target's dependability timeline."""
    reachable = check.state != Target.State.UNREACHABLE
    cpus_free = memory_free = None
    if capacity is not None:
        if capacity.cpus_total is not None:
            limit = min(capacity.cpus_total, target.max_cpus) if target.max_cpus else capacity.cpus_total
            cpus_free = round(max(0.0, limit - capacity.cpus_used), 3)
        if capacity.memory_total is not None:
            limit_bytes = min(capacity.memory_total, target.max_memory) if target.max_memory else capacity.memory_total
            memory_free = max(0, limit_bytes - capacity.memory_used)
    return TargetHealth.objects.create(
        target=target,
        time=now,
        reachable=reachable,
        docker_version=check.docker_version[:50],
        nodes_ready=check.nodes_ready if check.nodes_ready or not reachable else 1,
        nodes_down=check.nodes_down,
        cpus_total=capacity.cpus_total if capacity else None,
        cpus_free=cpus_free,
        memory_total=capacity.memory_total if capacity else None,
        memory_free=memory_free,
        containers_running=capacity.containers_running if capacity else 0,
        error=check.error,
    )


def unreachable_since(target: Target) -> datetime.datetime | None:
    """When the target's current run of failed checks began; None when its last check succeeded."""
    checks = TargetHealth.objects.filter(target=target)
    newest = checks.order_by("-time").values_list("reachable", flat=True).first()
    if newest is None or newest:
        return None
    last_ok = checks.filter(reachable=True).order_by("-time").values_list("time", flat=True).first()
    failed = checks.filter(reachable=False)
    if last_ok is not None:
        failed = failed.filter(time__gt=last_ok)
    return failed.order_by("time").values_list("time", flat=True).first()


def percent_of_limit(used: int, limit: int) -> float | None:
    return round(used / limit * 100.0, 2) if limit > 0 else None
