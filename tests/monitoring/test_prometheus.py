"""`/metrics`: the platform's figures for Prometheus, parsed back with prometheus_client's own parser."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from crane.targets import default_target
from monitoring.models import Alert, CollectorHeartbeat, TargetHealth
from orchestrator.models import Deployment
from orchestrator.services import deployment_create
from tests.conftest import DOCKER_TEMPLATE

pytestmark = pytest.mark.django_db


def scrape(client: Client | None = None, **headers: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = (client or Client()).get("/metrics", **headers)
    assert answer.status_code == 200, answer.content
    assert answer["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.content.decode())
        for sample in family.samples
    }


def test_metrics_count_deployments_steps_alerts_collectors_and_clouds(settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    deployment = deployment_create(template=DOCKER_TEMPLATE.encode(), filename="t.yaml", inputs={})
    Deployment.objects.filter(pk=deployment.pk).update(state=Deployment.State.RUNNING)
    Alert.objects.create(deployment=deployment, kind="cpu", message="hot", raised_at=timezone.now())
    CollectorHeartbeat.objects.create(
        name="monitor-1", last_round_at=timezone.now() - datetime.timedelta(seconds=20), round_seconds=0.4
    )
    TargetHealth.objects.create(target=default_target(), time=timezone.now(), reachable=False, nodes_down=1)

    figures = scrape()

    assert figures[("agora_deployments", (("state", "running"),))] == 1
    assert figures[("agora_deployments", (("state", "failed"),))] == 0
    assert figures[("agora_steps", (("state", "pending"),))] == deployment.steps.count()
    assert figures[("agora_steps_finished_total", (("state", "done"),))] == 0
    assert figures[("agora_alerts_firing", (("kind", "cpu"),))] == 1
    assert 19 <= figures[("agora_collector_lag_seconds", (("collector", "monitor-1"),))] < 60
    assert figures[("agora_target_reachable", (("target", "local"),))] == 0
    assert figures[("agora_target_nodes_down", (("target", "local"),))] == 1
    assert figures[("agora_redis_up", ())] == 1


def test_a_redis_outage_is_a_figure_not_an_error(settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert scrape()[("agora_redis_up", ())] == 0


def test_scrapers_from_elsewhere_need_the_token(settings: Any) -> None:
    settings.AGORA_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert Client().get("/metrics").status_code == 403
    settings.AGORA_METRICS_TOKEN = "s3cret-scrape-token"
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert scrape(HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")[("agora_redis_up", ())] in (0, 1)
    settings.AGORA_METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    assert Client().get("/metrics").status_code == 200
