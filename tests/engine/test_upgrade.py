"""Upgrades change only what differs, and a failed upgrade rolls back (real Docker, Redis, PostgreSQL)."""

from __future__ import annotations

import urllib.request
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest

from crane import conf
from crane.models import Target
from orchestrator.models import Deployment, Event, Step
from orchestrator.services import deployment_create, deployment_upgrade
from tests.engine.conftest import WEB_TEMPLATE, drive, needs_swarm

pytestmark = [pytest.mark.docker, needs_swarm]
SETTLED = {Deployment.State.RUNNING, Deployment.State.FAILED}


def page(deployment: Deployment) -> str:
    with urllib.request.urlopen(deployment.outputs["url"], timeout=5) as answer:  # noqa: S310 - our deployment
        return str(answer.read().decode()).strip()


def services_of(deployment: Deployment) -> list[dict[str, Any]]:
    client = docker.DockerClient(base_url=conf.local_endpoint(), version="auto", timeout=30)
    try:
        return list(client.api.services(filters={"label": f"agora.deployment={deployment.pk}"}))
    finally:
        client.close()


@pytest.fixture
def running(swarm: Target, queue_name: str, cleanup: list[str], settings: Any) -> Deployment:
    settings.AGORA_WAIT_HEALTHY_SECONDS = 60
    deployment = deployment_create(
        template=WEB_TEMPLATE.encode(), filename="web.yaml", inputs={"greeting": "version one"}, target=swarm
    )
    cleanup.append(deployment.pk)
    deployment = drive(deployment, SETTLED)
    assert deployment.state == Deployment.State.RUNNING, deployment.error
    return deployment


def test_upgrade_updates_only_the_changed_service_in_place(running: Deployment) -> None:
    (before,) = services_of(running)
    upgraded = deployment_upgrade(
        deployment=running, template=WEB_TEMPLATE.encode(), filename="web.yaml", inputs={"greeting": "version two"}
    )
    upgraded = drive(upgraded, SETTLED)
    assert upgraded.state == Deployment.State.RUNNING, upgraded.error
    assert page(upgraded) == "version two"
    steps = {s.key: s for s in Step.objects.filter(deployment=upgraded, generation=upgraded.generation)}
    assert {k for k, s in steps.items() if s.attempts} == {"web.service", "web.wait"}  # the rest carried over
    (after,) = services_of(upgraded)
    assert after["ID"] == before["ID"]  # updated in place, not replaced
    assert after["Version"]["Index"] > before["Version"]["Index"]


def test_a_failed_upgrade_rolls_back_to_the_previous_version(running: Deployment, settings: Any) -> None:
    broken = WEB_TEMPLATE.replace("image: agora/busybox:latest", "image: agora/does-not-exist:2.0")
    upgraded = deployment_upgrade(
        deployment=running, template=broken.encode(), filename="web.yaml", inputs={"greeting": "version two"}
    )
    upgraded = drive(upgraded, SETTLED)
    assert upgraded.state == Deployment.State.RUNNING, (
        upgraded.error,
        list(Event.objects.filter(deployment=upgraded).values_list("kind", "message"))[-6:],
    )
    assert upgraded.operation == "rollback"
    assert "rolled back" in upgraded.error and "agora/does-not-exist" in upgraded.error
    assert page(upgraded) == "version one"
    assert b"agora/busybox" in bytes(upgraded.template)
    kinds = set(Event.objects.filter(deployment=upgraded).values_list("kind", flat=True))
    assert {"deployment.rolling_back", "deployment.rolled_back"} <= kinds
    assert len(services_of(upgraded)) == 1


def test_a_failed_upgrade_of_a_subscription_leaves_it_on_the_version_that_runs(
    swarm: Target,
    queue_name: str,
    cleanup: list[str],
    settings: Any,
    alice: Any,
    bob: Any,
    charlie: Any,
    service: Any,
    subscriber_org: Any,
) -> None:
    from catalogue import services as catalogue
    from catalogue.models import AuditEvent
    from tests.conftest import actor, upload

    settings.AGORA_WAIT_HEALTHY_SECONDS = 60
    versions = []
    for number, text in (
        ("1.0.0", WEB_TEMPLATE),
        ("2.0.0", WEB_TEMPLATE.replace("agora/busybox:latest", "agora/nope:2")),
    ):
        version = upload(alice, service, number, text)
        catalogue.version_submit(actor=actor(alice), version=version)
        versions.append(catalogue.version_approve(actor=actor(charlie), version=version))
    subscription = catalogue.subscription_create(
        actor=actor(bob),
        subscriber=subscriber_org,
        version=versions[0],
        name="web",
        inputs={"greeting": "one"},
        target=swarm,
    )
    assert subscription.deployment is not None
    cleanup.append(subscription.deployment.pk)
    assert drive(subscription.deployment, SETTLED).state == Deployment.State.RUNNING

    catalogue.subscription_upgrade(
        actor=actor(bob), subscription=subscription, version=versions[1], inputs={"greeting": "two"}
    )
    deployment = drive(subscription.deployment, SETTLED)

    assert (deployment.state, deployment.operation) == (Deployment.State.RUNNING, "rollback")
    subscription.refresh_from_db()
    assert subscription.version == versions[0]
    assert subscription.inputs == {"greeting": "one"}
    assert AuditEvent.objects.filter(action="subscription.rolled_back", object_id=str(subscription.pk)).exists()
