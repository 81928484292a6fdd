"""The publishing workflow: upload → draft → submitted → published | rejected → deprecated → retired."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from catalogue import services
from catalogue.models import AuditEvent, Service, ServiceVersion
from config.errors import InvalidState, PermissionDenied, ValidationFailed
from tests.conftest import INVALID_TEMPLATE, actor, upload

pytestmark = pytest.mark.django_db


def test_valid_upload_is_stored_as_draft_with_report_and_inputs(alice: Any, service: Service) -> None:
    version = upload(alice, service)
    assert version.state == ServiceVersion.State.DRAFT
    assert version.validation_report["valid"] is True
    assert version.is_deployable
    assert set(version.inputs_schema) == {"greeting", "replicas"}
    assert version.inputs_schema["replicas"]["type"] == "integer"
    assert len(version.template_sha256) == 64
    assert version.template.read().decode().startswith("tosca_definitions_version")
    assert AuditEvent.objects.filter(action="version.uploaded", object_id=str(version.pk)).exists()


def test_invalid_upload_is_refused_with_problems_and_stores_nothing(alice: Any, service: Service) -> None:
    with pytest.raises(ValidationFailed) as caught:
        upload(alice, service, text=INVALID_TEMPLATE)
    assert caught.value.code == "invalid_template"
    problems = caught.value.details["problems"]
    assert any(p["node"] == "web" and p["kind"] == "tosca" for p in problems)
    assert not ServiceVersion.objects.exists()
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


@pytest.mark.parametrize("bad", ["1.0", "v1.0.0", "1.0.0.0", "01.0.0", "", "1.0.0-"])
def test_version_must_be_semantic(alice: Any, service: Service, bad: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        upload(alice, service, version=bad)
    assert caught.value.code == "invalid_version"


def test_version_number_is_unique_per_service(alice: Any, service: Service) -> None:
    upload(alice, service, "1.0.0")
    with pytest.raises(ValidationFailed) as caught:
        upload(alice, service, "1.0.0")
    assert caught.value.code == "duplicate"
    assert service.versions.count() == 1


def test_full_lifecycle_writes_an_audit_event_per_change(alice: Any, charlie: Any, service: Service) -> None:
    version = upload(alice, service)
    services.version_submit(actor=actor(alice), version=version)
    services.version_approve(actor=actor(charlie), version=version)
    service.refresh_from_db()
    assert service.state == Service.State.PUBLISHED
    services.version_deprecate(actor=actor(alice), version=version)
    services.version_retire(actor=actor(alice), version=version)
    version.refresh_from_db()
    assert version.state == ServiceVersion.State.RETIRED
    service.refresh_from_db()
    assert service.state == Service.State.DRAFT  # nothing left to subscribe to
    actions = list(
        AuditEvent.objects.filter(object_type="serviceversion", object_id=str(version.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "version.uploaded",
        "version.submitted",
        "version.published",
        "version.deprecated",
        "version.retired",
    ]
    event = AuditEvent.objects.get(action="version.published")
    assert event.actor_name == "charlie"
    assert event.ip_address == "192.0.2.10"


def test_reject_needs_a_reason_and_keeps_it(alice: Any, charlie: Any, draft_version: ServiceVersion) -> None:
    services.version_submit(actor=actor(alice), version=draft_version)
    with pytest.raises(ValidationFailed):
        services.version_reject(actor=actor(charlie), version=draft_version, reason="  ")
    rejected = services.version_reject(actor=actor(charlie), version=draft_version, reason="Image is not pinned.")
    assert rejected.state == ServiceVersion.State.REJECTED
    assert rejected.review_reason == "Image is not pinned."
    assert rejected.reviewed_by == charlie


@pytest.mark.parametrize(
    ("state", "verb"),
    [
        ("draft", "approve"),
        ("draft", "deprecate"),
        ("draft", "retire"),
        ("submitted", "submit"),
        ("published", "submit"),
        ("published", "approve"),
        ("rejected", "approve"),
        ("rejected", "submit"),
        ("deprecated", "approve"),
        ("retired", "deprecate"),
    ],
)
def test_forbidden_transitions_are_refused_and_change_nothing(
    alice: Any, charlie: Any, draft_version: ServiceVersion, state: str, verb: str
) -> None:
    ServiceVersion.objects.filter(pk=draft_version.pk).update(state=state)
    draft_version.refresh_from_db()
    events_before = AuditEvent.objects.count()
    who = charlie if verb == "approve" else alice
    with pytest.raises(InvalidState):
        getattr(services, f"version_{verb}")(actor=actor(who), version=draft_version)
    draft_version.refresh_from_db()
    assert draft_version.state == state
    assert AuditEvent.objects.count() == events_before


def test_publisher_cannot_approve_its_own_version(alice: Any, draft_version: ServiceVersion) -> None:
    services.version_submit(actor=actor(alice), version=draft_version)
    with pytest.raises(PermissionDenied):
        services.version_approve(actor=actor(alice), version=draft_version)


def test_viewer_of_the_publisher_cannot_upload_or_submit(
    alice: Any, service: Service, draft_version: ServiceVersion
) -> None:
    from tests.factories import MembershipFactory, UserFactory

    viewer = UserFactory.create(username="victor")
    MembershipFactory.create(user=viewer, organization=service.publisher, role="viewer")
    with pytest.raises(PermissionDenied):
        upload(viewer, service, "2.0.0")
    with pytest.raises(PermissionDenied):
        services.version_submit(actor=actor(viewer), version=draft_version)


def test_valid_but_not_deployable_version_is_stored_but_cannot_be_submitted(alice: Any, service: Service) -> None:
    text = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    storage:
      type: tosca.nodes.ObjectStorage
      properties:
        name: archive
"""
    version = upload(alice, service, text=text)
    assert version.validation_report["valid"] is True
    assert not version.is_deployable
    with pytest.raises(InvalidState) as caught:
        services.version_submit(actor=actor(alice), version=version)
    assert caught.value.code == "not_deployable"


def test_only_publisher_organizations_create_services(bob: Any, subscriber_org: Any) -> None:
    with pytest.raises(ValidationFailed):
        services.service_create(actor=actor(bob), publisher=subscriber_org, name="Not mine to publish")
    assert not Service.objects.exists()


def test_service_slug_and_tags_are_normalised(service: Service) -> None:
    assert service.slug == "citizen-forms"
    assert service.tags == ["forms", "participation"]


def test_oversized_template_is_refused_before_validation(alice: Any, service: Service, settings: Any) -> None:
    settings.AGORA_MAX_TEMPLATE_BYTES = 2048
    with pytest.raises(Exception) as caught:
        upload(alice, service, text="# padding\n" * 400)
    assert getattr(caught.value, "http_status", None) == 413
    assert not ServiceVersion.objects.exists()
