"""A subscriber's whole journey through the API: subscribe, watch it deploy, open it, unsubscribe."""

from __future__ import annotations

import urllib.request
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.test import APIClient

from catalogue import services
from catalogue.models import ServiceVersion
from crane import driver
from crane.models import Target
from orchestrator.models import Deployment, Step
from tests.engine.conftest import drive, needs_swarm

pytestmark = [pytest.mark.docker, needs_swarm]


def test_subscribe_deploys_the_service_and_unsubscribe_removes_it(
    swarm: Target, queue_name: str, cleanup: list[str], settings: Any
) -> None:
    settings.AGORA_WAIT_HEALTHY_SECONDS = 60
    call_command("seed_demo", stdout=StringIO())
    client = APIClient()
    client.force_authenticate(User.objects.get(username="bob"))
    version = ServiceVersion.objects.get(service__slug="open-data-portal", state="published")
    answer = client.post(
        "/api/v1/subscriptions/",
        {
            "name": "datos",
            "subscriber": "barcelona",
            "version": version.pk,
            "target": swarm.name,
            "inputs": {"portal_name": "Dades obertes", "admin_password": "a-long-secret-1"},
        },
        format="json",
    )
    assert answer.status_code == 201, answer.content
    subscription_id, deployment_id = answer.json()["id"], answer.json()["deployment"]
    cleanup.append(deployment_id)

    deployment = drive(Deployment.objects.get(pk=deployment_id), {Deployment.State.RUNNING, Deployment.State.FAILED})
    assert deployment.state == Deployment.State.RUNNING, deployment.error
    body = client.get(f"/api/v1/subscriptions/{subscription_id}/").json()
    assert body["status"] == "running"
    with urllib.request.urlopen(body["outputs"]["url"], timeout=5) as page:  # noqa: S310 - our own deployment
        html = page.read().decode()
    assert "Dades obertes" in html and "database" in html
    assert "a-long-secret-1" not in str(client.get(f"/api/v1/deployments/{deployment_id}/").json())

    # The publisher releases 2.2.0; the subscriber upgrades, keeping its values.
    publisher, operator = User.objects.get(username="alice"), User.objects.get(username="charlie")
    template = bytes(version.template.read()).replace(b"datasets served from", b"open datasets, served from")
    newer = services.version_upload(
        actor=services.Actor(publisher), service=version.service, version="2.2.0", filename="portal.yaml", data=template
    )
    services.version_submit(actor=services.Actor(publisher), version=newer)
    services.version_approve(actor=services.Actor(operator), version=newer)
    answer = client.post(f"/api/v1/subscriptions/{subscription_id}/upgrade/", {"version": newer.pk}, format="json")
    assert answer.status_code == 202, answer.content
    deployment = drive(deployment, {Deployment.State.RUNNING, Deployment.State.FAILED})
    assert deployment.state == Deployment.State.RUNNING and deployment.operation == "upgrade", deployment.error
    with urllib.request.urlopen(deployment.outputs["url"], timeout=5) as page:  # noqa: S310 - our own deployment
        assert "open datasets, served from database" in page.read().decode()
    changed = set(
        Step.objects.filter(deployment=deployment, generation=deployment.generation, attempts__gt=0).values_list(
            "key", flat=True
        )
    )
    assert changed == {"portal.service", "portal.wait"}  # the database, volume and secret were left alone

    assert client.post(f"/api/v1/subscriptions/{subscription_id}/unsubscribe/").status_code == 202
    deployment = drive(deployment, {Deployment.State.REMOVED, Deployment.State.FAILED})
    assert deployment.state == Deployment.State.REMOVED, deployment.error
    assert driver.list_objects(swarm, deployment_id).empty
    assert client.get(f"/api/v1/subscriptions/{subscription_id}/").json()["status"] == "removed"
