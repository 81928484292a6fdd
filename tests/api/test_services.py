from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from catalogue import services
from catalogue.models import Organization, Service, ServiceVersion
from tests.conftest import DOCKER_TEMPLATE, INVALID_TEMPLATE, actor, client_for, upload

pytestmark = pytest.mark.django_db


def publish(alice: Any, charlie: Any, publisher: Organization, name: str, **fields: Any) -> Service:
    service = services.service_create(actor=actor(alice), publisher=publisher, name=name, **fields)
    version = upload(alice, service)
    services.version_submit(actor=actor(alice), version=version)
    services.version_approve(actor=actor(charlie), version=version)
    return service


@pytest.fixture
def catalogue(alice: Any, charlie: Any, publisher_org: Organization) -> list[Service]:
    return [
        publish(
            alice,
            charlie,
            publisher_org,
            "Citizen Forms",
            summary="Forms for requests",
            category="e-government",
            tags=["forms"],
        ),
        publish(
            alice,
            charlie,
            publisher_org,
            "Open Data Portal",
            summary="Publish datasets",
            description="CKAN-based open data with harvesting of forms",
            category="open-data",
            tags=["data"],
        ),
        publish(
            alice,
            charlie,
            publisher_org,
            "Parking Sensors",
            summary="Smart parking",
            category="mobility",
            tags=["iot", "mobility"],
        ),
    ]


def slugs(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [s["slug"] for s in response.json()["results"]]


def test_search_ranks_name_matches_before_description_matches(catalogue: list[Service]) -> None:
    assert slugs(APIClient().get("/api/v1/services/?q=forms")) == ["citizen-forms", "open-data-portal"]


def test_search_finds_by_tag_and_category(catalogue: list[Service]) -> None:
    assert slugs(APIClient().get("/api/v1/services/?q=iot")) == ["parking-sensors"]
    assert slugs(APIClient().get("/api/v1/services/?q=mobility")) == ["parking-sensors"]


def test_search_matches_word_prefixes_in_names(catalogue: list[Service]) -> None:
    assert slugs(APIClient().get("/api/v1/services/?q=Park")) == ["parking-sensors"]


def test_filters_by_category_tag_and_publisher(catalogue: list[Service]) -> None:
    client = APIClient()
    assert slugs(client.get("/api/v1/services/?category=open-data")) == ["open-data-portal"]
    assert slugs(client.get("/api/v1/services/?tag=IoT")) == ["parking-sensors"]
    assert len(slugs(client.get("/api/v1/services/?publisher=opencivic"))) == 3
    assert slugs(client.get("/api/v1/services/?publisher=nobody")) == []


def test_ordering_and_pagination(catalogue: list[Service]) -> None:
    client = APIClient()
    assert slugs(client.get("/api/v1/services/?ordering=-name")) == [
        "parking-sensors",
        "open-data-portal",
        "citizen-forms",
    ]
    page = client.get("/api/v1/services/?page=1&ordering=name").json()
    assert page["count"] == 3
    assert client.get("/api/v1/services/?page=9").status_code == 404


def test_service_answer_shows_latest_published_version(catalogue: list[Service]) -> None:
    body = APIClient().get("/api/v1/services/citizen-forms/").json()
    assert body["latest_version"] == "1.0.0"
    assert body["publisher"] == "opencivic"
    assert body["state"] == "published"


def test_publisher_sees_own_drafts_in_the_list(
    alice: Any, publisher_org: Organization, catalogue: list[Service]
) -> None:
    draft = services.service_create(actor=actor(alice), publisher=publisher_org, name="Still Draft")
    assert draft.slug in slugs(client_for(alice).get("/api/v1/services/"))
    assert draft.slug not in slugs(APIClient().get("/api/v1/services/"))


def test_create_service(alice: Any, publisher_org: Organization) -> None:
    response = client_for(alice).post(
        "/api/v1/services/",
        {"name": "Waste Collection", "publisher": "opencivic", "category": "Environment", "tags": ["waste"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["slug"] == "waste-collection"
    assert response.json()["state"] == "draft"


def test_update_service(alice: Any, service: Service) -> None:
    response = client_for(alice).patch(f"/api/v1/services/{service.slug}/", {"summary": "Better"}, format="json")
    assert response.status_code == 200
    assert response.json()["summary"] == "Better"


def test_upload_valid_version(alice: Any, service: Service) -> None:
    response = client_for(alice).post(
        f"/api/v1/services/{service.slug}/versions/",
        {"version": "1.2.0", "changelog": "First", "file": SimpleUploadedFile("t.yaml", DOCKER_TEMPLATE.encode())},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "draft" and body["deployable"] is True
    assert body["inputs_schema"]["replicas"]["constraints"]


def test_upload_invalid_version_answers_problems_with_lines(alice: Any, service: Service) -> None:
    response = client_for(alice).post(
        f"/api/v1/services/{service.slug}/versions/",
        {"version": "1.2.0", "file": SimpleUploadedFile("t.yaml", INVALID_TEMPLATE.encode())},
        format="multipart",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_template"
    problem = body["details"]["problems"][0]
    assert problem["node"] == "web" and problem["line"] == 5
    assert not ServiceVersion.objects.exists()


def test_upload_over_the_request_limit_answers_413_in_json(alice: Any, service: Service, settings: Any) -> None:
    settings.AGORA_MAX_REQUEST_BYTES = 4096
    response = client_for(alice).post(
        f"/api/v1/services/{service.slug}/versions/",
        {"version": "1.2.0", "file": SimpleUploadedFile("t.yaml", b"x" * 10_000)},
        format="multipart",
    )
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_file_over_the_template_limit_answers_413(alice: Any, service: Service, settings: Any) -> None:
    settings.AGORA_MAX_TEMPLATE_BYTES = 4096
    response = client_for(alice).post(
        f"/api/v1/services/{service.slug}/versions/",
        {"version": "1.2.0", "file": SimpleUploadedFile("t.yaml", b"# x\n" * 3000)},
        format="multipart",
    )
    assert response.status_code == 413
    assert ServiceVersion.objects.count() == 0
