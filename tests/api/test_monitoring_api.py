"""The monitoring API: a deployment's health, metrics, logs and alerts, alert rules, the clouds' health."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from catalogue.models import AuditEvent, Subscription
from crane.targets import default_target
from monitoring.models import Alert, AlertRule, DeploymentHealth, TargetHealth
from monitoring.store import Line, Sample, get_store
from tests.conftest import client_for

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def deployment_id(subscription: Subscription) -> str:
    assert subscription.deployment_id is not None
    return subscription.deployment_id


def _samples(deployment_id: str) -> None:
    get_store().write_samples(
        [
            Sample(
                NOW - datetime.timedelta(minutes=m), deployment_id, "web", "c1", cpu_percent=10.0 * m, memory_bytes=m
            )
            for m in (1, 2, 3)
        ]
    )


def _lines(deployment_id: str, count: int) -> None:
    get_store().write_lines(
        [
            Line(NOW - datetime.timedelta(seconds=count - i), f"request {i} served", deployment_id, "web", level="info")
            for i in range(count)
        ]
        + [Line(NOW, "disk full", deployment_id, "db", level="error")]
    )


def test_metrics_give_the_latest_reading_per_node_and_a_series(bob: Any, deployment_id: str) -> None:
    _samples(deployment_id)

    answer = client_for(bob).get(f"/api/v1/deployments/{deployment_id}/metrics/?range=15m&bucket=60")

    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["bucket_seconds"] == 60
    assert body["latest"]["web"]["cpu_percent"] == 10.0
    values = sorted(p["max"]["cpu_percent"] for p in body["points"] if p["max"]["cpu_percent"] is not None)
    assert values == [10.0, 20.0, 30.0]


def test_metrics_refuse_a_bad_window(bob: Any, deployment_id: str) -> None:
    url = f"/api/v1/deployments/{deployment_id}/metrics/"
    assert client_for(bob).get(url + "?range=2y").status_code == 400
    assert client_for(bob).get(url + "?bucket=0").status_code == 400
    answer = client_for(bob).get(url + "?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z")
    assert answer.status_code == 400 and "later than since" in answer.json()["detail"]


def test_logs_are_searched_by_text_and_level_and_paged(bob: Any, deployment_id: str) -> None:
    _lines(deployment_id, 5)
    url = f"/api/v1/deployments/{deployment_id}/logs/"

    assert [r["message"] for r in client_for(bob).get(url + "?level=error").json()["results"]] == ["disk full"]
    first = client_for(bob).get(url + "?search=request&limit=3").json()
    assert [r["message"] for r in first["results"]] == ["request 4 served", "request 3 served", "request 2 served"]
    second = client_for(bob).get(url + f"?search=request&limit=3&before={first['next']}").json()
    assert [r["message"] for r in second["results"]] == ["request 1 served", "request 0 served"]
    assert second["next"] is None
    assert client_for(bob).get(url + "?level=loud").status_code == 400
    assert client_for(bob).get(url + "?before=not-a-cursor").status_code == 400


def test_health_is_unknown_until_the_collector_has_looked(bob: Any, deployment_id: str) -> None:
    url = f"/api/v1/deployments/{deployment_id}/health/"
    assert client_for(bob).get(url).json()["health"] == "unknown"
    DeploymentHealth.objects.create(
        deployment_id=deployment_id, health="healthy", nodes={"web": {"running": 2}}, checked_at=NOW
    )
    assert client_for(bob).get(url).json()["nodes"] == {"web": {"running": 2}}


def test_alerts_of_a_deployment_and_of_all_visible_deployments(bob: Any, mallory: Any, deployment_id: str) -> None:
    Alert.objects.create(deployment_id=deployment_id, kind="restarting", node="web", message="x", raised_at=NOW)
    Alert.objects.create(
        deployment_id=deployment_id,
        kind="cpu",
        state="resolved",
        message="y",
        raised_at=NOW,
        resolved_at=NOW,
    )

    firing = client_for(bob).get(f"/api/v1/deployments/{deployment_id}/alerts/?firing=true").json()
    assert [a["kind"] for a in firing["results"]] == ["restarting"]
    assert client_for(bob).get("/api/v1/alerts/").json()["count"] == 2
    assert client_for(mallory).get("/api/v1/alerts/").json()["count"] == 0


def test_alert_rules_are_set_per_deployment_with_an_audit_event(bob: Any, mallory: Any, deployment_id: str) -> None:
    body = {"deployment": deployment_id, "kind": "cpu", "threshold": 80, "duration_seconds": 120}

    assert client_for(bob).post("/api/v1/alert-rules/", body, format="json").status_code == 201
    assert client_for(bob).post("/api/v1/alert-rules/", {**body, "threshold": 70}, format="json").status_code == 201

    rule = AlertRule.objects.get(deployment_id=deployment_id, kind="cpu")
    assert (rule.threshold, rule.duration_seconds) == (70, 120)
    assert AuditEvent.objects.filter(action="alert_rule.changed", object_id=str(rule.pk)).exists()
    refused = client_for(mallory).post("/api/v1/alert-rules/", {**body, "threshold": 1}, format="json")
    assert refused.status_code == 400 and "deployment" in refused.json()
    without_threshold = {"deployment": deployment_id, "kind": "memory"}
    answer = client_for(bob).post("/api/v1/alert-rules/", without_threshold, format="json")
    assert answer.status_code == 400 and "threshold" in answer.json()["detail"]
    assert AlertRule.objects.get(deployment_id=deployment_id, kind="cpu").threshold == 70
    assert client_for(mallory).get("/api/v1/alert-rules/").json()["count"] == 0


def test_the_clouds_health_and_the_platform_logs_are_for_operators(bob: Any, charlie: Any, db: None) -> None:
    TargetHealth.objects.create(target=default_target(), time=NOW, reachable=True, docker_version="20.10")
    get_store().write_lines([Line(NOW, "version 3 approved", source="platform")])

    assert client_for(charlie).get("/api/v1/target-health/").json()["results"][0]["docker_version"] == "20.10"
    assert client_for(bob).get("/api/v1/target-health/").json()["count"] == 0
    platform = client_for(charlie).get("/api/v1/logs/?deployment=&search=approved").json()["results"]
    assert [line["message"] for line in platform] == ["version 3 approved"]
    assert client_for(bob).get("/api/v1/logs/").status_code == 404
