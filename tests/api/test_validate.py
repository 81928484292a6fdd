from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from catalogue.models import ServiceVersion
from tests.conftest import DOCKER_TEMPLATE, INVALID_TEMPLATE, client_for

pytestmark = pytest.mark.django_db


def test_validate_answers_the_report_and_stores_nothing(bob: Any) -> None:
    answer = client_for(bob).post(
        "/api/v1/validate/", {"file": SimpleUploadedFile("t.yaml", DOCKER_TEMPLATE.encode())}, format="multipart"
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["valid"] is True and body["deployable"] is True
    assert "greeting" in body["inputs"]
    assert not ServiceVersion.objects.exists()


def test_validate_invalid_template(bob: Any) -> None:
    answer = client_for(bob).post(
        "/api/v1/validate/", {"file": SimpleUploadedFile("t.yaml", INVALID_TEMPLATE.encode())}, format="multipart"
    )
    body = answer.json()
    assert answer.status_code == 200
    assert body["valid"] is False
    assert body["problems"][0]["kind"] == "tosca"


def test_validate_needs_a_file(bob: Any) -> None:
    answer = client_for(bob).post("/api/v1/validate/", {}, format="multipart")
    assert answer.status_code == 400
    assert "file" in answer.json()
