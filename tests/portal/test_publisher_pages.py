"""Publisher pages: my services and versions, new services, uploads with their problems at their lines, submitting."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from catalogue import services
from catalogue.models import AuditEvent, Membership, Organization, Service, ServiceVersion, Subscription
from portal import urls_publisher
from portal.views.publisher import annotate
from tests.conftest import DOCKER_TEMPLATE, INVALID_TEMPLATE, actor, upload
from tests.factories import MembershipFactory, UserFactory
from tests.orchestrator.conftest import make_zip
from tests.portal.conftest import by_class, by_id, client_of, queries_for, routes, text_of

pytestmark = pytest.mark.django_db

SERVICES = reverse("portal:publisher-services")
NEW_SERVICE = reverse("portal:publisher-service-create")


def service_url(service: Service) -> str:
    return reverse("portal:publisher-service", args=[service.slug])


def upload_url(service: Service) -> str:
    return reverse("portal:publisher-version-upload", args=[service.slug])


def version_url(version: ServiceVersion) -> str:
    return reverse("portal:publisher-version", args=[version.pk])


def submit_url(version: ServiceVersion) -> str:
    return reverse("portal:publisher-version-submit", args=[version.pk])


# --- who may see what ---------------------------------------------------------------------------------


def test_anonymous_people_are_sent_to_log_in(client: Client, service: Service) -> None:
    for url in (SERVICES, NEW_SERVICE, service_url(service), upload_url(service)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_a_subscriber_cannot_reach_the_publisher_pages(bob_client: Client, draft_version: ServiceVersion) -> None:
    service = draft_version.service
    for url in (SERVICES, NEW_SERVICE, service_url(service), upload_url(service), version_url(draft_version)):
        assert bob_client.get(url).status_code == 404, url
    assert bob_client.post(submit_url(draft_version)).status_code == 404
    assert bob_client.post(NEW_SERVICE, {"name": "Sneaky"}).status_code == 404
    draft_version.refresh_from_db()
    assert draft_version.state == ServiceVersion.State.DRAFT
    assert not Service.objects.filter(name="Sneaky").exists()


def test_a_publisher_cannot_see_another_publishers_drafts(
    mallory_client: Client, draft_version: ServiceVersion
) -> None:
    service = draft_version.service
    for url in (service_url(service), upload_url(service), version_url(draft_version)):
        assert mallory_client.get(url).status_code == 404, url
    assert mallory_client.post(submit_url(draft_version)).status_code == 404
    draft_version.refresh_from_db()
    assert draft_version.state == ServiceVersion.State.DRAFT
    assert service.name not in mallory_client.get(SERVICES).content.decode()


def test_a_published_service_of_another_publisher_is_not_theirs_to_manage(
    mallory_client: Client, published_version: ServiceVersion
) -> None:
    assert mallory_client.get(service_url(published_version.service)).status_code == 404
    assert mallory_client.get(version_url(published_version)).status_code == 404


@pytest.mark.parametrize("route", routes(urls_publisher.urlpatterns))
def test_every_publisher_page_is_not_found_for_subscribers_and_other_publishers(
    route: str, bob_client: Client, mallory_client: Client, draft_version: ServiceVersion
) -> None:
    """Every route of portal/urls_publisher.py, new ones included: a subscriber reaches none; another
    publisher reaches only its own lists and forms, never this publisher's service or version."""
    pattern = routes(urls_publisher.urlpatterns)[route]
    args: list[object] = []
    if "<slug:slug>" in pattern:
        args = [draft_version.service.slug]
    elif "<int:pk>" in pattern:
        args = [draft_version.pk]
    url = reverse(f"portal:{route}", args=args)
    assert bob_client.get(url).status_code == 404
    assert bob_client.post(url, {"name": "Sneaky", "version": "9.9.9", "source": DOCKER_TEMPLATE}).status_code == 404
    if args:
        assert mallory_client.get(url).status_code == 404
        assert mallory_client.post(url, {"version": "9.9.9", "source": DOCKER_TEMPLATE}).status_code == 404
    draft_version.refresh_from_db()
    assert draft_version.state == ServiceVersion.State.DRAFT
    assert ServiceVersion.objects.count() == 1
    assert not Service.objects.filter(name="Sneaky").exists()


# --- my services ---------------------------------------------------------------------------------------


def test_my_services_lists_the_current_publishers_services_with_their_counts(
    alice_client: Client, subscription: Subscription, mallory: Any
) -> None:
    rival = Organization.objects.get(slug="rival-soft")
    services.service_create(actor=actor(mallory), publisher=rival, name="Rival Forms")
    response = alice_client.get(SERVICES)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Citizen Forms" in page
    assert "Rival Forms" not in page
    row = text_of(by_class(response, "table-scroll")[0])
    assert "Citizen Forms 1.0.0 Published 1 0 1" in row  # newest version, versions, awaiting review, subscriptions


def test_the_service_page_lists_versions_with_state_review_and_subscriber_counts(
    alice: Any, alice_client: Client, subscription: Subscription, charlie: Any
) -> None:
    service = subscription.version.service
    rejected = upload(alice, service, "1.1.0")
    services.version_submit(actor=actor(alice), version=rejected)
    services.version_reject(actor=actor(charlie), version=rejected, reason="The image is not pinned.")
    response = alice_client.get(service_url(service))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Rejected: The image is not pinned." in page
    table = text_of(by_class(response, "table-scroll")[0])
    assert "1.0.0" in table and "1.1.0" in table
    # The publisher sees how many subscribe, as the API shows it, never who.
    assert "City of Barcelona" not in page
    assert "Active subscriptions 1" in text_of(by_class(response, "facts")[0])


def test_the_services_pages_take_the_same_queries_for_many_services(
    alice: Any, alice_client: Client, draft_version: ServiceVersion, django_assert_max_num_queries: Any
) -> None:
    service = draft_version.service
    few = queries_for(alice_client, SERVICES), queries_for(alice_client, service_url(service))
    for number in range(30):
        other = services.service_create(actor=actor(alice), publisher=service.publisher, name=f"Service {number}")
        upload(alice, other, "1.0.0")
        upload(alice, service, f"1.{number + 1}.0")
    many = queries_for(alice_client, SERVICES), queries_for(alice_client, service_url(service))
    assert few == many
    with django_assert_max_num_queries(9):
        assert alice_client.get(SERVICES).status_code == 200
    with django_assert_max_num_queries(9):
        assert alice_client.get(service_url(service)).status_code == 200


# --- new service ------------------------------------------------------------------------------------------


def test_creating_a_service_leads_to_uploading_its_first_version(
    alice_client: Client, publisher_org: Organization
) -> None:
    response = alice_client.post(
        NEW_SERVICE, {"name": "Noise Maps", "summary": "Noise levels", "category": "Environment", "tags": "noise, map"}
    )
    service = Service.objects.get(slug="noise-maps")
    assert response.status_code == 302
    assert response["Location"] == upload_url(service)
    assert service.publisher == publisher_org
    assert service.tags == ["map", "noise"]
    assert AuditEvent.objects.filter(action="service.created", object_id=str(service.pk)).exists()


def test_a_taken_slug_is_refused_at_its_field_and_nothing_is_created(alice_client: Client, service: Service) -> None:
    response = alice_client.post(NEW_SERVICE, {"name": "Other forms", "slug": service.slug})
    assert response.status_code == 400
    assert "exists already" in text_of(by_id(response, "id_slug_error"))
    assert Service.objects.count() == 1


def test_a_viewer_sees_the_services_but_cannot_create_one(publisher_org: Organization, service: Service) -> None:
    viewer = UserFactory.create(username="victor")
    MembershipFactory.create(user=viewer, organization=publisher_org, role=Membership.Role.VIEWER)
    client = client_of(viewer)
    page = client.get(SERVICES)
    assert page.status_code == 200
    assert service.name in page.content.decode()
    assert "New service" not in page.content.decode()
    response = client.post(NEW_SERVICE, {"name": "Not mine to make"})
    assert response.status_code == 400
    assert "You need to be administrator or editor" in response.content.decode()
    assert Service.objects.count() == 1


# --- uploads -------------------------------------------------------------------------------------------------


def test_an_invalid_upload_shows_the_error_at_its_line_and_stores_nothing(
    alice_client: Client, service: Service
) -> None:
    file = SimpleUploadedFile("service.yaml", INVALID_TEMPLATE.encode(), content_type="application/x-yaml")
    response = alice_client.post(upload_url(service), {"version": "1.0.0", "file": file})
    assert response.status_code == 400
    # Line 5 is `type: tosca.nodes.DoesNotExist`; the message sits in that line's row.
    line = text_of(by_id(response, "L5"))
    assert "tosca.nodes.DoesNotExist" in line
    assert "is not defined" in line
    assert "is not defined" not in text_of(by_id(response, "L4"))
    assert "nothing was stored" in response.content.decode()
    assert not ServiceVersion.objects.exists()
    assert not AuditEvent.objects.filter(action="version.uploaded").exists()
    # The text comes back in the box, to be fixed there.
    assert "tosca.nodes.DoesNotExist" in text_of(by_id(response, "id_source"))


def test_malformed_yaml_is_shown_where_the_parser_stopped(alice_client: Client, service: Service) -> None:
    response = alice_client.post(upload_url(service), {"version": "1.0.0", "source": "just: [words\n"})
    assert response.status_code == 400
    assert "The YAML is malformed" in text_of(by_id(response, "L2"))
    assert not ServiceVersion.objects.exists()


def test_a_pasted_valid_template_is_stored_as_a_draft(alice_client: Client, service: Service) -> None:
    response = alice_client.post(
        upload_url(service), {"version": "1.0.0", "source": DOCKER_TEMPLATE, "changelog": "First."}
    )
    version = ServiceVersion.objects.get(service=service)
    assert response.status_code == 302
    assert response["Location"] == version_url(version)
    assert version.state == ServiceVersion.State.DRAFT
    assert version.template_filename == "template.yaml"
    assert version.changelog == "First."
    page = alice_client.get(version_url(version))
    assert "Submit for review" in page.content.decode()
    # What deploying it would do, before it is submitted.
    assert "Level 1 (2 steps in parallel)" in text_of(by_class(page, "plan-levels")[0])


def test_an_invalid_csar_lists_each_problem_with_its_member_and_line(alice_client: Client, service: Service) -> None:
    csar = make_zip({"service.yaml": INVALID_TEMPLATE})
    file = SimpleUploadedFile("service.csar", csar, content_type="application/zip")
    response = alice_client.post(upload_url(service), {"version": "1.0.0", "file": file})
    assert response.status_code == 400
    listed = text_of(by_class(response, "problems")[0])
    assert "service.yaml:5" in listed and "is not defined" in listed
    assert "The source of a CSAR archive is not shown here" in response.content.decode()
    assert text_of(by_id(response, "id_source")) == ""  # a zip is not text to fix in the box
    assert not ServiceVersion.objects.exists()


def test_a_file_and_pasted_text_together_are_refused(alice_client: Client, service: Service) -> None:
    file = SimpleUploadedFile("service.yaml", DOCKER_TEMPLATE.encode())
    response = alice_client.post(upload_url(service), {"version": "1.0.0", "file": file, "source": DOCKER_TEMPLATE})
    assert response.status_code == 400
    assert "not both" in response.content.decode()
    assert not ServiceVersion.objects.exists()


def test_an_existing_version_number_is_refused_at_its_field(
    alice_client: Client, draft_version: ServiceVersion
) -> None:
    response = alice_client.post(upload_url(draft_version.service), {"version": "1.0.0", "source": DOCKER_TEMPLATE})
    assert response.status_code == 400
    assert "exists already" in text_of(by_id(response, "id_version_error"))
    assert ServiceVersion.objects.count() == 1


def test_annotate_places_each_problem_at_its_line_of_this_file() -> None:
    problems: list[dict[str, Any]] = [
        {"line": 2, "file": "t.yaml", "message": "on two"},
        {"line": None, "file": "t.yaml", "message": "whole file"},
        {"line": 1, "file": "agora/v1/profile.yaml", "message": "in an import"},
        {"line": 9, "file": "t.yaml", "message": "past the end"},
    ]
    source = annotate("a: 1\nb: 2\n", problems, "t.yaml")
    assert [(line.number, line.text) for line in source.lines] == [(1, "a: 1"), (2, "b: 2")]
    assert [p["message"] for p in source.lines[1].problems] == ["on two"]
    assert [p["message"] for p in source.elsewhere] == ["whole file", "in an import", "past the end"]
    assert source.count == 4
    assert source.first_problem_line == 2
    # A problem on the line after the last newline (where YAML ran out) keeps that line.
    assert len(annotate("a: [1\n", [{"line": 2, "file": "t.yaml"}], "t.yaml").lines) == 2
    assert annotate(None, problems, "t.csar").archive


# --- submitting and the review's outcome -------------------------------------------------------------------


def test_submitting_a_draft_sends_it_for_review(alice_client: Client, draft_version: ServiceVersion) -> None:
    response = alice_client.post(submit_url(draft_version))
    assert response.status_code == 302
    draft_version.refresh_from_db()
    assert draft_version.state == ServiceVersion.State.SUBMITTED
    page = alice_client.get(version_url(draft_version)).content.decode()
    assert "waiting for an operator" in page
    assert AuditEvent.objects.filter(action="version.submitted", object_id=str(draft_version.pk)).exists()


def test_submitting_twice_says_why_it_cannot(alice_client: Client, draft_version: ServiceVersion) -> None:
    alice_client.post(submit_url(draft_version))
    response = alice_client.post(submit_url(draft_version), follow=True)
    assert "it can be submitted only when draft" in response.content.decode()


def test_a_published_version_can_be_deprecated_then_retired(
    alice_client: Client, published_version: ServiceVersion
) -> None:
    page = alice_client.get(version_url(published_version)).content.decode()
    assert "Deprecate" in page and "Retire it from the catalogue" in page
    deprecate = reverse("portal:publisher-version-deprecate", args=[published_version.pk])
    response = alice_client.post(deprecate, follow=True)
    assert "takes no new subscriptions" in response.content.decode()
    published_version.refresh_from_db()
    assert published_version.state == ServiceVersion.State.DEPRECATED
    response = alice_client.post(deprecate, follow=True)  # the service's rule, in its words
    assert "it can be deprecated only when published" in response.content.decode()
    alice_client.post(reverse("portal:publisher-version-retire", args=[published_version.pk]))
    published_version.refresh_from_db()
    assert published_version.state == ServiceVersion.State.RETIRED
    assert AuditEvent.objects.filter(action="version.retired", object_id=str(published_version.pk)).exists()


def test_submitting_is_a_post(alice_client: Client, draft_version: ServiceVersion) -> None:
    assert alice_client.get(submit_url(draft_version)).status_code == 405
    draft_version.refresh_from_db()
    assert draft_version.state == ServiceVersion.State.DRAFT


def test_submitting_needs_the_csrf_token(alice: Any, draft_version: ServiceVersion) -> None:
    client = client_of(alice, csrf=True)
    assert client.post(submit_url(draft_version)).status_code == 403
    draft_version.refresh_from_db()
    assert draft_version.state == ServiceVersion.State.DRAFT
    page = client.get(version_url(draft_version))
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()


def test_a_rejected_version_shows_the_operators_reason(
    alice: Any, alice_client: Client, charlie: Any, draft_version: ServiceVersion
) -> None:
    services.version_submit(actor=actor(alice), version=draft_version)
    services.version_reject(actor=actor(charlie), version=draft_version, reason="Pin the image to a digest.")
    response = alice_client.get(version_url(draft_version))
    assert "Pin the image to a digest." in text_of(by_class(response, "review-reason")[0])
    assert "Submit for review" not in response.content.decode()


def test_an_undeployable_draft_shows_its_problems_and_cannot_be_submitted(
    alice: Any, alice_client: Client, service: Service
) -> None:
    block_storage = (
        "tosca_definitions_version: tosca_simple_yaml_1_3\n"
        "topology_template:\n"
        "  node_templates:\n"
        "    disk:\n"
        "      type: tosca.nodes.BlockStorage\n"
        "      properties: {size: 1 GB}\n"
    )
    version = upload(alice, service, "2.0.0", block_storage)
    assert not version.is_deployable
    response = alice_client.get(version_url(version))
    assert "cannot be submitted" in response.content.decode()
    assert "tosca.nodes.BlockStorage" in text_of(by_id(response, "L5"))
    alice_client.post(submit_url(version))
    version.refresh_from_db()
    assert version.state == ServiceVersion.State.DRAFT


def test_the_version_page_takes_a_constant_number_of_queries(
    alice_client: Client,
    bob: Any,
    subscriber_org: Organization,
    subscription: Subscription,
    django_assert_max_num_queries: Any,
) -> None:
    version = subscription.version
    few = queries_for(alice_client, version_url(version))
    for number in range(5):
        services.subscription_create(
            actor=actor(bob), subscriber=subscriber_org, version=version, name=f"forms-{number}", inputs={}
        )
    assert queries_for(alice_client, version_url(version)) == few
    with django_assert_max_num_queries(9):
        assert alice_client.get(version_url(version)).status_code == 200
