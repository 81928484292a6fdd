"""The API's real answers match the schema it serves at /api/schema/ (checked by schemathesis's own validator)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from rest_framework.authtoken.models import Token
from schemathesis.openapi import from_wsgi
from werkzeug.test import Client, TestResponse

from catalogue.models import Subscription

pytestmark = pytest.mark.django_db

APP = get_wsgi_application()


@pytest.fixture(autouse=True)
def _keep_the_test_s_connection() -> Iterator[None]:
    """Requests run inside the test's transaction: Django's handler must not close its connection after each
    (Django's own test client disconnects the same two receivers)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def served_schema(db: None) -> schemathesis.BaseSchema:
    """The schema as the running API serves it, not as a generator in the test would build it."""
    return from_wsgi("/api/schema/", APP)


def call(user: Any, method: str, path: str, **kwargs: Any) -> TestResponse:
    """A request through the whole WSGI stack (middleware, authentication) with the user's API token."""
    token, _ = Token.objects.get_or_create(user=user)
    return Client(APP).open(path, method=method, headers={"Authorization": f"Token {token.key}"}, **kwargs)


def assert_documented(schema: schemathesis.BaseSchema, template: str, method: str, answer: TestResponse) -> None:
    """The answer's status is documented for the operation and its body matches that status's schema."""
    operation = schema[template][method]
    operation.validate_response(answer)  # raises with what does not match
    assert operation.is_valid_response(answer)


def test_a_deployment_s_events_without_a_step_match_the_schema(
    served_schema: schemathesis.BaseSchema, bob: Any, subscription: Subscription
) -> None:
    answer = call(bob, "GET", f"/api/v1/deployments/{subscription.deployment_id}/events/")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body is not None
    events = body["results"]
    assert events and events[0]["kind"] == "deployment.created" and events[0]["step"] is None
    assert_documented(served_schema, "/api/v1/deployments/{id}/events/", "GET", answer)


def test_the_schema_says_an_event_s_step_may_be_null(served_schema: schemathesis.BaseSchema) -> None:
    step = served_schema.raw_schema["components"]["schemas"]["Event"]["properties"]["step"]
    assert step == {"type": "string", "readOnly": True, "nullable": True}
