from __future__ import annotations

from typing import Any

import pytest

from catalogue import services
from catalogue.models import AuditEvent, Organization, ServiceVersion, Subscription
from config.crypto import decrypt_json
from config.errors import InvalidState, ValidationFailed
from orchestrator.models import Deployment
from tests.conftest import DOCKER_TEMPLATE, actor

pytestmark = pytest.mark.django_db


def test_subscribing_fills_defaults_starts_a_deployment_and_audits(subscription: Subscription) -> None:
    assert subscription.state == Subscription.State.ACTIVE
    assert subscription.inputs == {"greeting": "Hello", "replicas": 2}
    deployment = subscription.deployment
    assert deployment is not None
    assert deployment.state == Deployment.State.PENDING
    assert deployment.inputs == {"greeting": "Hello", "replicas": 2}
    assert deployment.template_sha256 == subscription.version.template_sha256
    assert [s.key for s in deployment.steps.all()] == ["network", "web.image", "web.service", "web.wait"]
    event = AuditEvent.objects.get(action="subscription.created")
    assert event.organization == subscription.subscriber
    assert event.data["deployment"] == deployment.pk


def test_unsubscribing_undeploys_and_keeps_the_subscription_as_history(bob: Any, subscription: Subscription) -> None:
    cancelled = services.subscription_cancel(actor=actor(bob), subscription=subscription)
    assert cancelled.state == Subscription.State.CANCELLED and cancelled.cancelled_at is not None
    assert cancelled.deployment is not None
    cancelled.deployment.refresh_from_db()
    assert cancelled.deployment.state == Deployment.State.UNDEPLOYING
    assert AuditEvent.objects.filter(action="subscription.cancelled").exists()
    with pytest.raises(InvalidState):
        services.subscription_cancel(actor=actor(bob), subscription=cancelled)


@pytest.mark.parametrize(
    ("inputs", "input_name", "message"),
    [
        ({"replicas": 9}, "replicas", "between 1 and 5"),
        ({"replicas": "many"}, "replicas", "whole number"),
        ({"colour": "red"}, "colour", "no input named"),
    ],
)
def test_inputs_violating_the_template_are_refused_with_a_message_each(
    bob: Any,
    subscriber_org: Organization,
    published_version: ServiceVersion,
    inputs: dict[str, Any],
    input_name: str,
    message: str,
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.subscription_create(
            actor=actor(bob), subscriber=subscriber_org, version=published_version, name="x", inputs=inputs
        )
    assert message in caught.value.details[input_name]
    assert not Subscription.objects.exists()


def test_draft_version_cannot_be_subscribed(
    bob: Any, subscriber_org: Organization, draft_version: ServiceVersion
) -> None:
    with pytest.raises(InvalidState):
        services.subscription_create(
            actor=actor(bob), subscriber=subscriber_org, version=draft_version, name="x", inputs={}
        )


def test_rejected_version_cannot_be_subscribed(
    alice: Any, bob: Any, charlie: Any, subscriber_org: Organization, draft_version: ServiceVersion
) -> None:
    services.version_submit(actor=actor(alice), version=draft_version)
    services.version_reject(actor=actor(charlie), version=draft_version, reason="no")
    with pytest.raises(InvalidState):
        services.subscription_create(
            actor=actor(bob), subscriber=subscriber_org, version=draft_version, name="x", inputs={}
        )


def test_publisher_organization_cannot_subscribe(
    alice: Any, publisher_org: Organization, published_version: ServiceVersion
) -> None:
    with pytest.raises(ValidationFailed):
        services.subscription_create(
            actor=actor(alice), subscriber=publisher_org, version=published_version, name="x", inputs={}
        )


def test_live_subscription_names_are_unique_per_subscriber(
    bob: Any, subscriber_org: Organization, subscription: Subscription
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.subscription_create(
            actor=actor(bob), subscriber=subscriber_org, version=subscription.version, name="forms", inputs={}
        )
    assert caught.value.code == "duplicate"


def test_secret_inputs_are_stored_encrypted_apart(
    alice: Any, bob: Any, charlie: Any, service: Any, subscriber_org: Organization
) -> None:
    from tests.conftest import upload

    text = DOCKER_TEMPLATE.replace(
        "  inputs:\n", "  inputs:\n    admin_password:\n      type: string\n      metadata:\n        secret: true\n"
    )
    version = upload(alice, service, "2.0.0", text)
    assert version.inputs_schema["admin_password"]["secret"] is True
    services.version_submit(actor=actor(alice), version=version)
    services.version_approve(actor=actor(charlie), version=version)
    sub = services.subscription_create(
        actor=actor(bob),
        subscriber=subscriber_org,
        version=version,
        name="s",
        inputs={"admin_password": "s3cr3t-value"},
    )
    sub.refresh_from_db()
    assert "admin_password" not in sub.inputs
    assert "s3cr3t-value" not in sub.secret_inputs
    assert decrypt_json(sub.secret_inputs) == {"admin_password": "s3cr3t-value"}
    assert "s3cr3t-value" not in str(list(AuditEvent.objects.values_list("data", flat=True)))
    assert sub.deployment is not None
    assert "s3cr3t-value" not in sub.deployment.secret_inputs
    assert "s3cr3t-value" not in str(sub.deployment.plan) + str(sub.deployment.inputs)
    assert decrypt_json(sub.deployment.secret_inputs) == {"admin_password": "s3cr3t-value"}
