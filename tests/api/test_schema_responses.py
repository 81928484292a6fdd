"""The API's real answers match the schema it serves at /api/schema/ (checked by schemathesis's own validator)."""

from __future__ import annotations

import io
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
    documented = schema.raw_schema["paths"][template][method.lower()]["responses"]
    assert str(answer.status_code) in documented, f"{answer.status_code} is not documented: {sorted(documented)}"
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


# --- error answers: the status is documented for the operation and the body is the documented one ---------


def test_missing_fields_answer_documented_field_errors(served_schema: schemathesis.BaseSchema, bob: Any) -> None:
    answer = call(bob, "POST", "/api/v1/subscriptions/", json={})
    assert answer.status_code == 400
    assert answer.get_json() == {field: ["This field is required."] for field in ("name", "subscriber", "version")}
    assert_documented(served_schema, "/api/v1/subscriptions/", "POST", answer)


def test_invalid_inputs_answer_a_documented_agora_error(
    served_schema: schemathesis.BaseSchema, bob: Any, subscriber_org: Any, published_version: Any
) -> None:
    body = {"name": "forms", "subscriber": subscriber_org.slug, "version": published_version.pk}
    answer = call(bob, "POST", "/api/v1/subscriptions/", json={**body, "inputs": {"replicas": 99}})
    assert answer.status_code == 400
    error = answer.get_json()
    assert error is not None and error["code"] == "invalid_inputs" and "replicas" in error["details"]
    assert_documented(served_schema, "/api/v1/subscriptions/", "POST", answer)


def test_a_bad_token_answers_a_documented_401(served_schema: schemathesis.BaseSchema, db: None) -> None:
    answer = Client(APP).get("/api/v1/deployments/", headers={"Authorization": "Token not-a-token"})
    assert answer.status_code == 401
    assert answer.get_json() == {"detail": "Invalid token."}
    assert_documented(served_schema, "/api/v1/deployments/", "GET", answer)


def test_a_subscriber_deprecating_a_version_answers_a_documented_403(
    served_schema: schemathesis.BaseSchema, bob: Any, published_version: Any
) -> None:
    answer = call(bob, "POST", f"/api/v1/versions/{published_version.pk}/deprecate/")
    assert answer.status_code == 403
    error = answer.get_json()
    assert error is not None and error["code"] == "permission_denied"
    assert_documented(served_schema, "/api/v1/versions/{id}/deprecate/", "POST", answer)


def test_another_organization_s_deployment_answers_a_documented_404(
    served_schema: schemathesis.BaseSchema, mallory: Any, subscription: Subscription
) -> None:
    answer = call(mallory, "GET", f"/api/v1/deployments/{subscription.deployment_id}/")
    assert answer.status_code == 404
    assert_documented(served_schema, "/api/v1/deployments/{id}/", "GET", answer)


def test_a_page_out_of_range_answers_a_documented_404(served_schema: schemathesis.BaseSchema, bob: Any) -> None:
    answer = call(bob, "GET", "/api/v1/services/?page=9")
    assert answer.status_code == 404
    assert answer.get_json() == {"detail": "Invalid page."}
    assert_documented(served_schema, "/api/v1/services/", "GET", answer)


def test_platform_logs_answer_subscribers_a_documented_404(served_schema: schemathesis.BaseSchema, bob: Any) -> None:
    answer = call(bob, "GET", "/api/v1/logs/")
    assert answer.status_code == 404
    assert_documented(served_schema, "/api/v1/logs/", "GET", answer)


def test_unsubscribing_twice_answers_a_documented_409(
    served_schema: schemathesis.BaseSchema, bob: Any, subscription: Subscription
) -> None:
    path = f"/api/v1/subscriptions/{subscription.pk}/unsubscribe/"
    assert call(bob, "POST", path).status_code == 202
    answer = call(bob, "POST", path)
    assert answer.status_code == 409
    error = answer.get_json()
    assert error is not None and error["code"] == "invalid_state"
    assert_documented(served_schema, "/api/v1/subscriptions/{id}/unsubscribe/", "POST", answer)


def test_the_last_administrator_s_removal_answers_a_documented_409(
    served_schema: schemathesis.BaseSchema, bob: Any
) -> None:
    membership = bob.memberships.get()
    answer = call(bob, "DELETE", f"/api/v1/memberships/{membership.pk}/")
    assert answer.status_code == 409
    assert_documented(served_schema, "/api/v1/memberships/{id}/", "DELETE", answer)


def test_an_oversized_request_answers_a_documented_413(
    served_schema: schemathesis.BaseSchema, bob: Any, settings: Any
) -> None:
    settings.AGORA_MAX_REQUEST_BYTES = 1024
    answer = call(bob, "POST", "/api/v1/validate/", data={"file": (io.BytesIO(b"x" * 4096), "t.yaml")})
    assert answer.status_code == 413
    error = answer.get_json()
    assert error is not None and error["code"] == "too_large"
    assert_documented(served_schema, "/api/v1/validate/", "POST", answer)


def test_an_id_the_router_cannot_match_answers_a_documented_json_404(
    served_schema: schemathesis.BaseSchema, bob: Any
) -> None:
    """Ids never contain a dot (DRF's router does not match one): the API answers its JSON 404, not a page."""
    answer = call(bob, "GET", "/api/v1/deployments/not.an.id/")
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "application/json"
    error = answer.get_json()
    assert error is not None and error["code"] == "not_found" and "/api/v1/deployments/not.an.id/" in error["detail"]
    assert_documented(served_schema, "/api/v1/deployments/{id}/", "GET", answer)


def test_a_page_outside_the_api_still_answers_the_portal_s_404_page(db: None) -> None:
    answer = Client(APP).get("/no-such-page/")
    assert answer.status_code == 404
    assert answer.headers["Content-Type"].startswith("text/html")


def test_patching_a_membership_without_a_role_changes_nothing_as_documented(
    served_schema: schemathesis.BaseSchema, bob: Any
) -> None:
    membership = bob.memberships.get()
    answer = call(bob, "PATCH", f"/api/v1/memberships/{membership.pk}/", json={})
    assert answer.status_code == 200
    assert answer.get_json()["role"] == "admin"
    assert_documented(served_schema, "/api/v1/memberships/{id}/", "PATCH", answer)
    body = served_schema.raw_schema["paths"]["/api/v1/memberships/{id}/"]["patch"]["requestBody"]
    assert "role" not in body["content"]["application/json"]["schema"].get("required", [])


def test_demoting_the_last_admin_answers_a_documented_409(served_schema: schemathesis.BaseSchema, bob: Any) -> None:
    membership = bob.memberships.get()
    answer = call(bob, "PATCH", f"/api/v1/memberships/{membership.pk}/", json={"role": "viewer"})
    assert answer.status_code == 409
    assert_documented(served_schema, "/api/v1/memberships/{id}/", "PATCH", answer)


def test_an_audit_filter_with_an_offset_postgresql_does_not_take_answers_documented(
    served_schema: schemathesis.BaseSchema, bob: Any, subscription: Subscription
) -> None:
    """ISO 8601 admits offsets up to 23:59, PostgreSQL up to 15:59: found by schemathesis as a 500."""
    answer = call(bob, "GET", "/api/v1/audit-events/?since=2000-01-01T05:03:14%2B18:23&until=5350-05-02T05:03:14-18:23")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body is not None and [e["action"] for e in body["results"]] == ["subscription.created"]
    assert_documented(served_schema, "/api/v1/audit-events/", "GET", answer)
