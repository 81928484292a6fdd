from __future__ import annotations

from typing import Any

import pytest

from catalogue.models import ServiceVersion, Subscription
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
