from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_operator_reads_the_whole_trail_with_filters(charlie: Any, subscription: Any) -> None:
    body = client_for(charlie).get("/api/v1/audit-events/?action=version.published").json()
    assert body["count"] == 1
    event = body["results"][0]
    assert event["actor"] == "charlie" and event["organization"] == "opencivic"


def test_organization_admin_reads_only_its_organization(bob: Any, subscription: Any) -> None:
    actions = {e["action"] for e in client_for(bob).get("/api/v1/audit-events/").json()["results"]}
    assert actions == {"subscription.created"}


def test_openapi_schema_and_docs_are_served() -> None:
    schema = APIClient().get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/services/" in schema.content
    assert APIClient().get("/api/docs/").status_code == 200


def test_token_authentication(bob: Any) -> None:
    answer = APIClient().post("/api/v1/auth/token/", {"username": "bob", "password": "correct-horse-battery"})
    token = answer.json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me/").json()["username"] == "bob"


def test_the_openapi_schema_validates_without_warnings(tmp_path: Any) -> None:
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/v1/deployments/{id}/metrics/" in (tmp_path / "schema.yaml").read_text()
