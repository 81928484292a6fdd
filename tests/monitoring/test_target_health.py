"""ClouT's dependability block: each round checks the target (reachable, Docker version, swarm nodes,
free capacity) and keeps it as a timeline; a target that does not answer leaves its deployments'
health unknown (not failed) and raises `unreachable` alerts."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from catalogue.models import Organization
from crane import conf
from crane.models import Target
from crane.targets import forget_clients
from monitoring.collector import RoundMemory, collect_round, purge
from monitoring.health import unreachable_since
from monitoring.models import Alert, AlertRule, CollectorHeartbeat, DeploymentHealth, LogCursor, TargetHealth
from orchestrator.models import Deployment
from tests.crane.conftest import MIB, make_target
from tests.monitoring import collector_fixtures
from tests.monitoring.collector_fixtures import Deployments, needs_swarm, service

monitored = collector_fixtures.monitored
owner = collector_fixtures.owner
swarm = collector_fixtures.swarm
engine = collector_fixtures.engine


def test_an_unreachable_target_leaves_its_deployments_unknown_and_raises_an_alert(
    monitored: Deployments, owner: Organization, mailoutbox: list[Any]
) -> None:
    target = make_target(Target.Mode.ENGINE, endpoint="tcp://127.0.0.1:1")
    deployment = monitored.create(target, owner=owner.slug)
    AlertRule.objects.create(deployment=deployment, kind=AlertRule.Kind.UNREACHABLE, duration_seconds=1)
    memory = RoundMemory()

    report = collect_round(target, memory=memory, interval=1)
    assert not report.reachable
    check = TargetHealth.objects.get(target=target)
    assert not check.reachable and "does not answer" in check.error and check.docker_version == ""
    health = DeploymentHealth.objects.get(deployment=deployment)
    assert health.health == DeploymentHealth.Health.UNKNOWN and "does not answer" in health.message
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.RUNNING  # unknown, not failed
    assert not Alert.objects.filter(deployment=deployment).exists()  # not down for 1 s yet
    assert unreachable_since(target) == check.time

    TargetHealth.objects.filter(target=target).update(time=check.time - datetime.timedelta(seconds=5))
    collect_round(target, memory=memory, interval=1)
    alert = Alert.objects.get(deployment=deployment, kind=AlertRule.Kind.UNREACHABLE, state=Alert.State.FIRING)
    assert alert.node == "" and f'Target "{target.name}" has not answered' in alert.message
    assert [m.subject for m in mailoutbox] == [f"[Agora] Alert: Cloud unreachable on {deployment.name}"]
    target.refresh_from_db()
    assert target.state == Target.State.UNREACHABLE

    # The cloud answers again.
    Target.objects.filter(pk=target.pk).update(endpoint=conf.local_endpoint())
    target.refresh_from_db()
    forget_clients()
    report = collect_round(target, memory=memory, interval=1)
    assert report.reachable
    alert.refresh_from_db()
    assert alert.state == Alert.State.RESOLVED
    assert mailoutbox[-1].subject == f"[Agora] Resolved: Cloud unreachable on {deployment.name}"
    assert unreachable_since(target) is None
    assert list(TargetHealth.objects.filter(target=target).values_list("reachable", flat=True)) == [True, False, False]


@needs_swarm
@pytest.mark.docker
def test_a_swarm_target_records_its_version_nodes_and_free_capacity(swarm: Target, monitored: Deployments) -> None:
    Target.objects.filter(pk=swarm.pk).update(max_cpus=2.0, max_memory=1024 * MIB)
    swarm.refresh_from_db()
    collect_round(swarm, interval=1)
    before = TargetHealth.objects.filter(target=swarm).latest("time")
    assert before.reachable and before.error == ""
    assert before.docker_version.startswith("20.10") or before.docker_version[:2].isdigit()
    assert before.nodes_ready >= 1 and before.nodes_down == 0
    assert before.cpus_total and before.cpus_total >= 1 and before.memory_total and before.memory_total > 0
    assert before.cpus_free == min(2.0, before.cpus_total)
    assert before.memory_free == 1024 * MIB

    monitored.create(swarm, service("app", "exec sleep 600", cpu_limit=0.5, memory_limit=64 * MIB))
    deadline = time.monotonic() + 60
    while True:  # the service's limits count at once; its container runs once swarm has started the task
        collect_round(swarm, interval=1)
        after = TargetHealth.objects.filter(target=swarm).latest("time")
        if after.containers_running >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert after.cpus_free == pytest.approx(before.cpus_free - 0.5)
    assert after.memory_free == before.memory_free - 64 * MIB
    assert after.containers_running >= 1


@pytest.mark.docker
def test_an_engine_target_counts_as_one_ready_node(engine: Target) -> None:
    collect_round(engine, interval=1)
    check = TargetHealth.objects.get(target=engine)
    assert check.reachable and (check.nodes_ready, check.nodes_down) == (1, 0)


def test_retention_removes_old_checks_and_cursors_of_gone_containers(engine: Target, monitored: Deployments) -> None:
    deployment = monitored.create(engine)
    now = timezone.now()
    old = now - datetime.timedelta(days=30)
    TargetHealth.objects.create(target=engine, time=old, reachable=True)
    TargetHealth.objects.create(target=engine, time=now, reachable=True)
    for container in ("gone", "still-there"):
        LogCursor.objects.create(container_id=container, deployment_id=deployment.pk, node="web", last_time=old)
    LogCursor.objects.filter(deployment_id=deployment.pk).update(updated_at=old)

    purge(now=now, targets_watched=[engine], live=["still-there"])

    assert list(TargetHealth.objects.filter(target=engine).values_list("time", flat=True)) == [now]
    assert list(LogCursor.objects.values_list("container_id", flat=True)) == ["still-there"]


@pytest.mark.docker
def test_one_collector_watches_several_targets_even_when_one_is_down(engine: Target, monitored: Deployments) -> None:
    down = make_target(Target.Mode.ENGINE, endpoint="tcp://127.0.0.1:1")
    lost = monitored.create(down)
    fine = monitored.create(engine, service("app", "exec sleep 600"))

    call_command("monitor", "--target", engine.name, "--target", down.name, "--once", "--name", "pair")

    assert TargetHealth.objects.get(target=engine).reachable
    assert not TargetHealth.objects.get(target=down).reachable
    assert DeploymentHealth.objects.get(deployment=lost).health == DeploymentHealth.Health.UNKNOWN
    assert DeploymentHealth.objects.get(deployment=fine).health in (
        DeploymentHealth.Health.HEALTHY,
        DeploymentHealth.Health.STARTING,
    )
    assert set(CollectorHeartbeat.objects.values_list("name", flat=True)) == {
        f"pair/{engine.name}",
        f"pair/{down.name}",
    }


@pytest.mark.docker
def test_a_second_collector_on_the_same_target_is_told_about(engine: Target, caplog: pytest.LogCaptureFixture) -> None:
    collect_round(engine, collector="first", interval=15)
    assert "watches target" not in caplog.text
    collect_round(engine, collector="second", interval=15)
    assert f'collector "first" watches target {engine.name} too' in caplog.text
