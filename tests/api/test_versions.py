from __future__ import annotations

from typing import Any

import pytest

from catalogue.models import AuditEvent, ServiceVersion
from tests.conftest import DOCKER_TEMPLATE, client_for

pytestmark = pytest.mark.django_db


def test_workflow_through_the_api(alice: Any, charlie: Any, draft_version: ServiceVersion) -> None:
    url = f"/api/v1/versions/{draft_version.pk}"
    assert client_for(alice).post(f"{url}/submit/").json()["state"] == "submitted"
    assert client_for(alice).post(f"{url}/approve/").status_code == 403
    answer = client_for(charlie).post(f"{url}/approve/")
    assert answer.status_code == 200 and answer.json()["state"] == "published"
    assert client_for(alice).post(f"{url}/deprecate/").json()["state"] == "deprecated"
    assert client_for(alice).post(f"{url}/retire/").json()["state"] == "retired"


def test_reject_through_the_api_needs_a_reason(alice: Any, charlie: Any, draft_version: ServiceVersion) -> None:
    url = f"/api/v1/versions/{draft_version.pk}"
    client_for(alice).post(f"{url}/submit/")
    assert client_for(charlie).post(f"{url}/reject/", {}, format="json").status_code == 400
    answer = client_for(charlie).post(f"{url}/reject/", {"reason": "Pin the image."}, format="json")
    assert answer.json()["state"] == "rejected"
    assert answer.json()["review_reason"] == "Pin the image."


def test_forbidden_transition_answers_409_with_a_sentence(alice: Any, draft_version: ServiceVersion) -> None:
    answer = client_for(alice).post(f"/api/v1/versions/{draft_version.pk}/deprecate/")
    assert answer.status_code == 409
    assert answer.json()["code"] == "invalid_state"
    assert "draft" in answer.json()["detail"]


def test_template_download_returns_the_uploaded_bytes(alice: Any, draft_version: ServiceVersion) -> None:
    answer = client_for(alice).get(f"/api/v1/versions/{draft_version.pk}/template/")
    assert answer.status_code == 200
    assert answer.getvalue().decode() == DOCKER_TEMPLATE


def test_versions_show_how_many_subscribe(alice: Any, subscription: Any) -> None:
    body = client_for(alice).get(f"/api/v1/versions/{subscription.version.pk}/").json()
    assert body["subscriptions_count"] == 1


def test_api_actions_record_the_callers_address(alice: Any, draft_version: ServiceVersion) -> None:
    client_for(alice).post(f"/api/v1/versions/{draft_version.pk}/submit/", REMOTE_ADDR="198.51.100.7")
    assert AuditEvent.objects.get(action="version.submitted").ip_address == "198.51.100.7"
