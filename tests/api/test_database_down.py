"""While PostgreSQL is unreachable the API answers 503 with a sentence, never a traceback, and recovers after;
while Redis is, work is accepted and waits in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from catalogue.models import Service, ServiceVersion
from orchestrator.models import Deployment, Step
from tests.conftest import client_for


@pytest.fixture
def database_down(transactional_db: None) -> Iterator[str]:
    """Points this process's connection at a port where nothing listens, as if PostgreSQL had stopped;
    yields the real port."""
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        yield port
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port


@pytest.mark.parametrize("path", ["/api/v1/services/", "/api/v1/subscriptions/", "/api/v1/deployments/"])
def test_the_api_answers_503_in_json_while_the_database_is_down(database_down: str, path: str) -> None:
    response = Client(raise_request_exception=False).get(path, HTTP_AUTHORIZATION="Token 0123456789abcdef")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "code": "unavailable",
        "detail": "The database is not reachable right now; try again shortly.",
    }
    assert response["Retry-After"] == "10"


def test_a_page_outside_the_api_answers_503_without_a_traceback(database_down: str) -> None:
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = "a-session-the-database-would-know"
    response = client.get("/admin/")

    assert response.status_code == 503
    assert b"not reachable right now" in response.content
    assert b"Traceback" not in response.content


def test_the_api_answers_again_once_the_database_is_back(database_down: str) -> None:
    assert Client(raise_request_exception=False).get("/api/v1/services/").status_code == 503
    connection.close()
    connection.settings_dict["PORT"] = database_down
    assert Client().get("/api/v1/services/").status_code == 200
    assert Service.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_subscribing_while_redis_is_down_is_accepted_and_queued_not_an_error(
    bob: Any, published_version: ServiceVersion, settings: Any
) -> None:
    """The step rows in PostgreSQL are the truth: with Redis down the work waits there, and the workers'
    reconciler enqueues it once Redis answers (tests/engine/test_redis_down.py)."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    answer = client_for(bob).post(
        "/api/v1/subscriptions/",
        {"name": "while-redis-sleeps", "subscriber": "barcelona", "version": published_version.pk},
        format="json",
    )

    assert answer.status_code == 201, answer.content
    deployment = Deployment.objects.get(pk=answer.json()["deployment"])
    assert deployment.state == Deployment.State.DEPLOYING
    assert deployment.steps.filter(state=Step.State.QUEUED).exists()
    assert client_for(bob).get(f"/api/v1/deployments/{deployment.pk}/").status_code == 200
