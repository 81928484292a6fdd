from __future__ import annotations

from typing import Any

import pytest

from catalogue.models import ServiceVersion, Subscription
from orchestrator.models import Deployment
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_subscribe_and_list(bob: Any, published_version: ServiceVersion) -> None:
    client = client_for(bob)
    answer = client.post(
        "/api/v1/subscriptions/",
        {"name": "forms", "subscriber": "barcelona", "version": published_version.pk, "inputs": {"replicas": 3}},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["inputs"] == {"greeting": "Hello", "replicas": 3}
    listed = client.get("/api/v1/subscriptions/").json()["results"]
    assert [s["name"] for s in listed] == ["forms"]
    assert listed[0]["service"] == published_version.service.slug


def test_subscribe_with_bad_inputs_answers_each_problem(bob: Any, published_version: ServiceVersion) -> None:
    answer = client_for(bob).post(
        "/api/v1/subscriptions/",
        {"name": "forms", "subscriber": "barcelona", "version": published_version.pk, "inputs": {"replicas": 0}},
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_inputs"
    assert "replicas" in answer.json()["details"]
    assert not Subscription.objects.exists()


def test_operator_sees_every_subscription(charlie: Any, subscription: Subscription) -> None:
    listed = client_for(charlie).get("/api/v1/subscriptions/").json()["results"]
    assert [s["id"] for s in listed] == [subscription.pk]


def test_subscription_answers_follow_the_deployment(bob: Any, subscription: Subscription) -> None:
    body = client_for(bob).get(f"/api/v1/subscriptions/{subscription.pk}/").json()
    assert body["status"] == "pending"
    assert body["deployment"] == subscription.deployment_id
    assert body["outputs"] == {}
    deployment = client_for(bob).get(f"/api/v1/deployments/{subscription.deployment_id}/").json()
    assert deployment["progress"] == {"done": 0, "total": 4}
    assert [s["key"] for s in deployment["steps"]] == ["network", "web.image", "web.service", "web.wait"]
    events = client_for(bob).get(f"/api/v1/deployments/{subscription.deployment_id}/events/").json()["results"]
    assert events[0]["kind"] == "deployment.created"


def test_subscribing_to_an_unknown_target_is_refused(bob: Any, published_version: ServiceVersion) -> None:
    answer = client_for(bob).post(
        "/api/v1/subscriptions/",
        {"name": "x", "subscriber": "barcelona", "version": published_version.pk, "target": "mars"},
        format="json",
    )
    assert answer.status_code == 400
    assert "target" in answer.json()


def test_unsubscribe_answers_202_and_removal_runs_in_the_background(bob: Any, subscription: Subscription) -> None:
    answer = client_for(bob).post(f"/api/v1/subscriptions/{subscription.pk}/unsubscribe/")
    assert answer.status_code == 202
    assert answer.json()["state"] == "cancelled"
    assert answer.json()["status"] == "undeploying"


def test_a_cancelled_subscriptions_instance_cannot_be_deployed_again(bob: Any, subscription: Subscription) -> None:
    client_for(bob).post(f"/api/v1/subscriptions/{subscription.pk}/unsubscribe/")
    Deployment.objects.filter(pk=subscription.deployment_id).update(state=Deployment.State.REMOVED)

    answer = client_for(bob).post(f"/api/v1/deployments/{subscription.deployment_id}/deploy/")

    assert answer.status_code == 409
    assert "subscribe again" in answer.json()["detail"]
    assert Deployment.objects.get(pk=subscription.deployment_id).state == Deployment.State.REMOVED


def test_deployment_actions_in_the_wrong_state_answer_409(bob: Any, subscription: Subscription) -> None:
    answer = client_for(bob).post(f"/api/v1/deployments/{subscription.deployment_id}/retry/")
    assert answer.status_code == 409
    assert "only a failed deployment" in answer.json()["detail"]
    answer = client_for(bob).post(f"/api/v1/deployments/{subscription.deployment_id}/deploy/")
    assert answer.status_code == 409
    assert "wait for it to finish" in answer.json()["detail"]


def test_targets_list_hides_endpoints(bob: Any, subscription: Subscription) -> None:
    targets = client_for(bob).get("/api/v1/targets/").json()["results"]
    assert targets and set(targets[0]) == {"name", "provider", "region", "mode", "state", "checked_at"}


def test_upgrade_needs_a_running_instance_and_a_version_of_the_same_service(
    alice: Any, bob: Any, charlie: Any, subscription: Subscription
) -> None:
    from catalogue import services as catalogue_services
    from tests.conftest import actor, upload

    other = catalogue_services.service_create(
        actor=actor(alice), publisher=subscription.version.service.publisher, name="Other"
    )
    foreign = upload(alice, other, "1.0.0")
    catalogue_services.version_submit(actor=actor(alice), version=foreign)
    catalogue_services.version_approve(actor=actor(charlie), version=foreign)
    url = f"/api/v1/subscriptions/{subscription.pk}/upgrade/"
    answer = client_for(bob).post(url, {"version": foreign.pk}, format="json")
    assert answer.status_code == 400 and "same service" in answer.json()["detail"]
    answer = client_for(bob).post(url, {"version": subscription.version_id, "inputs": {"replicas": 0}}, format="json")
    assert answer.status_code == 400 and "replicas" in answer.json()["details"]
    answer = client_for(bob).post(url, {"version": subscription.version_id}, format="json")
    assert answer.status_code == 409 and "only a running deployment" in answer.json()["detail"]
    deployment_url = f"/api/v1/deployments/{subscription.deployment_id}/upgrade/"
    answer = client_for(bob).post(deployment_url, {"version": foreign.pk}, format="json")
    assert answer.status_code == 400 and "same service" in answer.json()["detail"]
    answer = client_for(bob).post(deployment_url, {"version": subscription.version_id}, format="json")
    assert answer.status_code == 409 and "only a running deployment" in answer.json()["detail"]


def test_a_deployment_made_from_a_template_has_no_version_to_upgrade_to(
    charlie: Any, published_version: ServiceVersion
) -> None:
    from orchestrator.services import deployment_create
    from tests.conftest import DOCKER_TEMPLATE

    deployment = deployment_create(template=DOCKER_TEMPLATE.encode(), filename="t.yaml", inputs={})
    answer = client_for(charlie).post(
        f"/api/v1/deployments/{deployment.pk}/upgrade/", {"version": published_version.pk}, format="json"
    )
    assert answer.status_code == 409 and "not a subscription" in answer.json()["detail"]
