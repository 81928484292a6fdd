"""Alert rules: a crashing container raises a restart alert and resolves it once stable, a busy one a CPU
alert after its duration; a collector restart neither resolves nor raises again; owners get e-mails."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from catalogue.models import Organization
from crane import driver
from crane.models import Target
from monitoring import alerts
from monitoring.alerts import DEFAULT_RULES, Rule, Windows, node_verdicts, raise_alert, rules_for
from monitoring.collector import RoundMemory, collect_round
from monitoring.health import NodeFacts
from monitoring.models import Alert, AlertRule, DeploymentHealth
from orchestrator.models import Deployment
from tests.crane.conftest import SWARM, make_target
from tests.monitoring import collector_fixtures
from tests.monitoring.collector_fixtures import Deployments, eventually, healthy_when, service

engine = collector_fixtures.engine
monitored = collector_fixtures.monitored
owner = collector_fixtures.owner

Kind = AlertRule.Kind


@pytest.fixture(params=[Target.Mode.SWARM, Target.Mode.ENGINE])
def target(request: pytest.FixtureRequest, transactional_db: None) -> Target:
    if request.param == Target.Mode.SWARM and not SWARM:
        pytest.skip("the local Docker daemon is not an active swarm manager")
    return make_target(request.param)


def _firing(deployment: Deployment, kind: str) -> Alert | None:
    return Alert.objects.filter(deployment=deployment, kind=kind, state=Alert.State.FIRING).first()


@pytest.mark.docker
def test_a_crashing_container_raises_a_restart_alert_and_resolves_it_once_stable(
    target: Target, monitored: Deployments, owner: Organization, mailoutbox: list[Any]
) -> None:
    deployment = monitored.create(target, service("app", "echo starting; sleep 0.5; exit 1"), owner=owner.slug)
    AlertRule.objects.create(deployment=deployment, kind=Kind.RESTARTING, threshold=1, duration_seconds=8)
    memory = RoundMemory()

    def raised() -> Alert | None:
        collect_round(target, memory=memory, interval=1)
        return _firing(deployment, Kind.RESTARTING)

    alert = eventually(raised, "a restart alert", timeout=60, pause=1)
    assert alert.node == "app"
    assert 'Node "app" restarted' in alert.message
    assert [m.to for m in mailoutbox] == [["ops@town.example"]]
    assert mailoutbox[0].subject == f"[Agora] Alert: Container restarting on {deployment.name}/app"
    alert.refresh_from_db()
    assert alert.notified_at is not None

    driver.ensure_services(target, deployment.pk, [service("app", "exec sleep 600")])  # the fixed version

    def resolved() -> bool:
        collect_round(target, memory=memory, interval=1)
        alert.refresh_from_db()
        return alert.state == Alert.State.RESOLVED

    eventually(resolved, "the alert resolved", timeout=60, pause=1)
    assert alert.resolved_at is not None and alert.resolved_at >= alert.raised_at
    assert mailoutbox[-1].subject == f"[Agora] Resolved: Container restarting on {deployment.name}/app"
    assert len(mailoutbox) == 2
    assert Alert.objects.filter(deployment=deployment, kind=Kind.RESTARTING).count() == 1


@pytest.mark.docker
def test_a_busy_container_raises_a_cpu_alert_after_its_duration_and_a_collector_restart_keeps_it(
    engine: Target, monitored: Deployments, owner: Organization, mailoutbox: list[Any]
) -> None:
    deployment = monitored.create(engine, service("busy", "while :; do :; done"), owner=owner.slug)
    rule = AlertRule.objects.create(deployment=deployment, kind=Kind.CPU, threshold=5, duration_seconds=3)
    memory = RoundMemory()
    first = timezone.now()
    collect_round(engine, memory=memory, interval=1)
    assert _firing(deployment, Kind.CPU) is None  # above the threshold, but not for 3 s yet

    def raised() -> Alert | None:
        collect_round(engine, memory=memory, interval=1)
        return _firing(deployment, Kind.CPU)

    alert = eventually(raised, "a CPU alert", timeout=30, pause=1)
    assert (alert.raised_at - first).total_seconds() >= 3
    assert "of one CPU, above 5% for 3 s" in alert.message
    assert len(mailoutbox) == 1

    # A new collector knows nothing of the last 3 s: it neither resolves nor raises again.
    collect_round(engine, memory=RoundMemory(), interval=1)
    assert _firing(deployment, Kind.CPU) == alert
    assert Alert.objects.filter(deployment=deployment).count() == 1 and len(mailoutbox) == 1

    rule.threshold = 99  # a quarter CPU is never above 99% of one
    rule.save()
    collect_round(engine, memory=memory, interval=1)
    alert.refresh_from_db()
    assert alert.state == Alert.State.RESOLVED
    assert mailoutbox[-1].subject.startswith("[Agora] Resolved: CPU above threshold")


@pytest.mark.docker
def test_a_failing_health_check_makes_the_deployment_unhealthy_and_raises_an_alert(
    engine: Target, monitored: Deployments, owner: Organization, mailoutbox: list[Any]
) -> None:
    deployment = monitored.create(
        engine, service("app", "exec sleep 600", healthcheck=healthy_when("false")), owner=owner.slug
    )
    AlertRule.objects.create(deployment=deployment, kind=Kind.UNHEALTHY, duration_seconds=2)
    memory = RoundMemory()

    def raised() -> Alert | None:
        collect_round(engine, memory=memory, interval=1)
        return _firing(deployment, Kind.UNHEALTHY)

    alert = eventually(raised, "an unhealthy alert", timeout=60, pause=1)
    assert alert.node == "app" and "failing their health check" in alert.message
    health = DeploymentHealth.objects.get(deployment=deployment)
    assert health.health == DeploymentHealth.Health.UNHEALTHY
    assert health.nodes["app"]["unhealthy"] == 1 and "failing the health check" in health.message
    assert [m.subject for m in mailoutbox] == [f"[Agora] Alert: Health check failing on {deployment.name}/app"]

    driver.ensure_services(
        target=engine,
        deployment=deployment.pk,
        specs=[service("app", "exec sleep 600", healthcheck=healthy_when("true"))],
    )

    def resolved() -> bool:
        collect_round(engine, memory=memory, interval=1)
        alert.refresh_from_db()
        return alert.state == Alert.State.RESOLVED

    eventually(resolved, "the alert resolved", timeout=60, pause=1)

    def healthy() -> bool:
        collect_round(engine, memory=memory, interval=1)
        return DeploymentHealth.objects.get(deployment=deployment).health == DeploymentHealth.Health.HEALTHY

    eventually(healthy, "the deployment healthy again", timeout=30, pause=0.5)
    assert mailoutbox[-1].subject == f"[Agora] Resolved: Health check failing on {deployment.name}/app"


def _facts(**fields: Any) -> NodeFacts:
    values: dict[str, Any] = {
        "deployment": "d1",
        "node": "web",
        "desired": 1,
        "running": 1,
        "starting": 0,
        "unhealthy": 0,
        "restarts": 0,
    }
    values.update(fields)
    return NodeFacts(**values)


def test_memory_and_health_conditions_hold_for_their_duration_before_firing() -> None:
    windows = Windows()
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    rules: dict[str, Rule] = {Kind.MEMORY: Rule(Kind.MEMORY, 90, 60), Kind.UNHEALTHY: Rule(Kind.UNHEALTHY, None, 30)}

    def verdicts(seconds: int, **fields: Any) -> dict[str, bool | None]:
        now = start + datetime.timedelta(seconds=seconds)
        facts = _facts(**fields)
        alerts.record_readings(windows, [facts], now)
        return {v.kind: v.firing for v in node_verdicts(facts, rules, windows, now=now, stale_after=45)}

    assert verdicts(0, memory_percent=95, unhealthy=1) == {Kind.MEMORY: None, Kind.UNHEALTHY: None}
    assert verdicts(30, memory_percent=97, unhealthy=1) == {Kind.MEMORY: None, Kind.UNHEALTHY: True}
    assert verdicts(60, memory_percent=96, unhealthy=0) == {Kind.MEMORY: True, Kind.UNHEALTHY: False}
    assert verdicts(75, memory_percent=50, unhealthy=0) == {Kind.MEMORY: False, Kind.UNHEALTHY: False}
    # A new run above the threshold starts counting again.
    assert verdicts(90, memory_percent=95)[Kind.MEMORY] is None
    # Readings that stopped coming (the target away) say nothing.
    now = start + datetime.timedelta(seconds=300)
    stale = node_verdicts(_facts(), rules, windows, now=now, stale_after=45)
    assert {v.kind: v.firing for v in stale} == {Kind.MEMORY: None, Kind.UNHEALTHY: None}


def test_restarts_fire_at_the_threshold_and_resolve_only_after_a_quiet_window() -> None:
    now = datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.UTC)
    rules: dict[str, Rule] = {Kind.RESTARTING: Rule(Kind.RESTARTING, 3, 300)}

    def firing(*ago: int) -> bool | None:
        times = tuple(sorted(now - datetime.timedelta(seconds=s) for s in ago))
        facts = _facts(restart_times=times, restarts=len(times))
        return node_verdicts(facts, rules, Windows(), now=now, stale_after=45)[0].firing

    assert firing(10, 100, 200) is True
    assert firing(10, 100, 400) is None  # two in the window: not enough to raise, too recent to resolve
    assert firing(400, 500, 600) is False
    assert firing() is False


def test_rules_default_to_the_built_in_ones_and_a_deployment_can_override_or_switch_off(
    engine: Target, monitored: Deployments
) -> None:
    plain = monitored.create(engine)
    tuned = monitored.create(engine)
    AlertRule.objects.create(deployment=None, kind=Kind.CPU, threshold=75, duration_seconds=120)
    AlertRule.objects.create(deployment=tuned, kind=Kind.CPU, threshold=None, duration_seconds=30)
    AlertRule.objects.create(deployment=tuned, kind=Kind.MEMORY, enabled=False)
    rules = rules_for([plain.pk, tuned.pk])
    assert rules[plain.pk][Kind.CPU] == Rule(Kind.CPU, 75, 120)
    assert rules[plain.pk][Kind.RESTARTING] == DEFAULT_RULES[Kind.RESTARTING] == Rule(Kind.RESTARTING, 1, 300)
    assert rules[tuned.pk][Kind.CPU] == Rule(Kind.CPU, 90, 30)  # no threshold: the built-in one
    assert Kind.MEMORY not in rules[tuned.pk] and Kind.MEMORY in rules[plain.pk]


def test_the_same_alert_raised_twice_is_stored_and_mailed_once(
    engine: Target, monitored: Deployments, owner: Organization, mailoutbox: list[Any]
) -> None:
    deployment = monitored.create(engine, owner=owner.slug)
    now = timezone.now()
    first = raise_alert(deployment, Kind.UNHEALTHY, "web", "failing", now=now)
    second = raise_alert(deployment, Kind.UNHEALTHY, "web", "failing", now=now)
    assert first is not None and second is None
    assert Alert.objects.filter(deployment=deployment).count() == 1
    assert len(mailoutbox) == 1
    # Another node, or once resolved, is a new alert.
    assert raise_alert(deployment, Kind.UNHEALTHY, "db", "failing", now=now) is not None
    assert alerts.resolve_alert(first, now=now) and not alerts.resolve_alert(first, now=now)
    assert raise_alert(deployment, Kind.UNHEALTHY, "web", "failing again", now=now) is not None


def test_alerts_of_a_removed_deployment_are_resolved(engine: Target, monitored: Deployments) -> None:
    deployment = monitored.create(engine)
    alert = raise_alert(deployment, Kind.RESTARTING, "web", "restarting", now=timezone.now())
    assert alert is not None
    Deployment.objects.filter(pk=deployment.pk).update(state=Deployment.State.REMOVED)
    collect_round(engine, interval=1)
    alert.refresh_from_db()
    assert alert.state == Alert.State.RESOLVED


def test_no_mail_without_an_address(engine: Target, monitored: Deployments, mailoutbox: list[Any]) -> None:
    Organization.objects.create(slug="quiet-town", name="Quiet Town", kind=Organization.Kind.PUBLIC_ADMINISTRATION)
    deployment = monitored.create(engine, owner="quiet-town")
    alert = raise_alert(deployment, Kind.CPU, "web", "busy", now=timezone.now())
    assert alert is not None and alert.notified_at is None
    assert mailoutbox == []
