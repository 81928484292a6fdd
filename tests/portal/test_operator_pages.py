"""Operator pages: the approval queue and the review (source, plan, problems, approve, reject), clouds and
their health, every deployment with filters, the audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalogue import services
from catalogue.models import AuditEvent, Organization, Service, ServiceVersion
from crane.models import Target
from monitoring.models import TargetHealth
from orchestrator.models import Deployment, Step
from portal import urls_operator
from portal.views.publisher import sample_value
from tests.conftest import DOCKER_TEMPLATE, actor, upload
from tests.portal.conftest import by_class, by_id, client_of, queries_for, routes, text_of

pytestmark = pytest.mark.django_db

QUEUE = reverse("portal:operator-queue")
CLOUDS = reverse("portal:operator-targets")
DEPLOYMENTS = reverse("portal:operator-deployments")
AUDIT = reverse("portal:operator-audit")

NEEDS_A_CITY = DOCKER_TEMPLATE.replace(
    "  inputs:\n", "  inputs:\n    city:\n      type: string\n      description: Shown on the page.\n", 1
)


def review_url(version: ServiceVersion) -> str:
    return reverse("portal:operator-version", args=[version.pk])


def approve_url(version: ServiceVersion) -> str:
    return reverse("portal:operator-version-approve", args=[version.pk])


def reject_url(version: ServiceVersion) -> str:
    return reverse("portal:operator-version-reject", args=[version.pk])


@pytest.fixture
def submitted(alice: Any, draft_version: ServiceVersion) -> ServiceVersion:
    return services.version_submit(actor=actor(alice), version=draft_version)


def make_target(name: str) -> Target:
    return Target.objects.create(name=name, provider="on-premises", public_host="127.0.0.1", endpoint="unix:///x.sock")


def make_deployments(target: Target, count: int, *, state: str = "running", owner: str = "barcelona") -> None:
    deployments = Deployment.objects.bulk_create(
        Deployment(
            name=f"{owner}/app-{state}-{number}",
            owner=owner,
            target=target,
            template=b"",
            template_filename="t.yaml",
            template_sha256="0" * 64,
            state=state,
            generation=1,
        )
        for number in range(count)
    )
    Step.objects.bulk_create(
        Step(deployment=d, generation=1, position=p, key=f"s{p}", kind="service", summary="s", state=step_state)
        for d in deployments
        for p, step_state in enumerate(("done", "done", "pending"))
    )


# --- who may see them ----------------------------------------------------------------------------------


def test_only_operators_reach_the_operator_pages(
    client: Client, alice_client: Client, bob_client: Client, mallory_client: Client, submitted: ServiceVersion
) -> None:
    pages = (QUEUE, CLOUDS, DEPLOYMENTS, AUDIT, review_url(submitted))
    for url in pages:
        assert client.get(url)["Location"].startswith("/accounts/login/")
        for outsider in (alice_client, bob_client, mallory_client):
            assert outsider.get(url).status_code == 404, url
    assert alice_client.post(approve_url(submitted)).status_code == 404
    assert alice_client.post(reject_url(submitted), {"reason": "mine"}).status_code == 404
    submitted.refresh_from_db()
    assert submitted.state == ServiceVersion.State.SUBMITTED


@pytest.mark.parametrize("route", routes(urls_operator.urlpatterns))
def test_every_operator_page_is_not_found_for_everyone_else(
    route: str, alice_client: Client, bob_client: Client, mallory_client: Client, submitted: ServiceVersion
) -> None:
    """Every route of portal/urls_operator.py, new ones included, for a publisher, a subscriber and an outsider."""
    args = [submitted.pk] if "<int:pk>" in routes(urls_operator.urlpatterns)[route] else []
    url = reverse(f"portal:{route}", args=args)
    for outsider in (alice_client, bob_client, mallory_client):
        assert outsider.get(url).status_code == 404
        assert outsider.post(url, {"reason": "not mine to give"}).status_code == 404
    submitted.refresh_from_db()
    assert submitted.state == ServiceVersion.State.SUBMITTED


# --- the queue and the review ------------------------------------------------------------------------------


def test_the_queue_lists_submitted_versions_oldest_first(
    alice: Any, charlie_client: Client, submitted: ServiceVersion
) -> None:
    newer = upload(alice, submitted.service, "1.1.0")
    services.version_submit(actor=actor(alice), version=newer)
    upload(alice, submitted.service, "1.2.0")  # a draft: not the operators' business yet
    response = charlie_client.get(QUEUE)
    table = text_of(by_class(response, "table-scroll")[0])
    assert table.index("Citizen Forms 1.0.0") < table.index("Citizen Forms 1.1.0")
    assert "1.2.0" not in table


def test_the_review_shows_the_source_the_plan_and_the_problems(
    alice: Any, charlie_client: Client, service: Service
) -> None:
    version = upload(alice, service, "3.0.0", NEEDS_A_CITY)
    services.version_submit(actor=actor(alice), version=version)
    response = charlie_client.get(review_url(version))
    assert response.status_code == 200
    page = response.content.decode()
    # The plan as `manage.py tosca plan` prints it: levels of steps that run together.
    plan = text_of(by_class(response, "plan-levels")[0])
    assert "Level 1 (2 steps in parallel)" in plan
    assert "web.service run 1 x busybox:latest as web" in plan
    assert "city = sample" in page  # the required input without a default gets a sample value
    assert "city:" in text_of(by_id(response, "L8"))
    assert "No problems were found." in page
    assert "Approve and publish" in page


def test_approving_publishes_the_version_and_the_service_enters_the_catalogue(
    charlie: Any, charlie_client: Client, submitted: ServiceVersion
) -> None:
    assert submitted.service.name not in Client().get("/").content.decode()
    response = charlie_client.post(approve_url(submitted))
    assert response.status_code == 302
    assert response["Location"] == QUEUE
    submitted.refresh_from_db()
    assert submitted.state == ServiceVersion.State.PUBLISHED
    assert submitted.reviewed_by == charlie
    event = AuditEvent.objects.get(action="version.published", object_id=str(submitted.pk))
    assert event.actor_name == "charlie"
    assert submitted.service.name in Client().get("/").content.decode()


def test_approving_twice_says_why_it_cannot(charlie_client: Client, submitted: ServiceVersion) -> None:
    charlie_client.post(approve_url(submitted))
    response = charlie_client.post(approve_url(submitted), follow=True)
    assert "it can be approved only when submitted" in response.content.decode()


def test_rejecting_needs_a_reason_and_changes_nothing_without_one(
    charlie_client: Client, submitted: ServiceVersion
) -> None:
    response = charlie_client.post(reject_url(submitted), {"reason": "   "})
    assert response.status_code == 400
    assert text_of(by_id(response, "id_reason_error"))
    submitted.refresh_from_db()
    assert submitted.state == ServiceVersion.State.SUBMITTED
    assert not AuditEvent.objects.filter(action="version.rejected").exists()


def test_rejecting_with_a_reason_returns_the_version_to_its_publisher(
    alice_client: Client, charlie_client: Client, submitted: ServiceVersion
) -> None:
    response = charlie_client.post(reject_url(submitted), {"reason": "Set memory limits."})
    assert response.status_code == 302
    submitted.refresh_from_db()
    assert submitted.state == ServiceVersion.State.REJECTED
    assert submitted.review_reason == "Set memory limits."
    page = alice_client.get(reverse("portal:publisher-version", args=[submitted.pk])).content.decode()
    assert "Set memory limits." in page


def test_rejecting_a_version_already_published_says_why_it_cannot(
    charlie_client: Client, submitted: ServiceVersion
) -> None:
    charlie_client.post(approve_url(submitted))
    response = charlie_client.post(reject_url(submitted), {"reason": "Too late."}, follow=True)
    assert "it can be rejected only when submitted" in response.content.decode()
    submitted.refresh_from_db()
    assert submitted.state == ServiceVersion.State.PUBLISHED


def test_approving_and_rejecting_need_the_csrf_token(charlie: Any, submitted: ServiceVersion) -> None:
    client = client_of(charlie, csrf=True)
    assert client.post(approve_url(submitted)).status_code == 403
    assert client.post(reject_url(submitted), {"reason": "no"}).status_code == 403
    submitted.refresh_from_db()
    assert submitted.state == ServiceVersion.State.SUBMITTED


def test_sample_values_meet_the_simplest_constraints() -> None:
    assert sample_value({"type": "string", "constraints": [{"valid_values": ["es", "ca"]}]}) == "es"
    assert sample_value({"type": "integer", "constraints": [{"in_range": [2, 5]}]}) == 2
    assert sample_value({"type": "integer", "constraints": [{"greater_than": 3}]}) == 4
    assert sample_value({"type": "string", "constraints": [{"min_length": 3}]}) == "xxx"
    assert sample_value({"type": "boolean"}) is False


def test_the_queue_and_review_take_a_constant_number_of_queries(
    alice: Any, charlie_client: Client, submitted: ServiceVersion, django_assert_max_num_queries: Any
) -> None:
    few = queries_for(charlie_client, QUEUE), queries_for(charlie_client, review_url(submitted))
    for number in range(20):
        services.version_submit(actor=actor(alice), version=upload(alice, submitted.service, f"1.{number + 1}.0"))
    assert (queries_for(charlie_client, QUEUE), queries_for(charlie_client, review_url(submitted))) == few
    with django_assert_max_num_queries(8):
        charlie_client.get(QUEUE)


# --- clouds -------------------------------------------------------------------------------------------------


def test_the_clouds_page_shows_the_latest_health_and_a_short_timeline(charlie_client: Client) -> None:
    checked, unchecked = make_target("eu-west"), make_target("on-premises")
    start = timezone.now() - dt.timedelta(minutes=30)
    TargetHealth.objects.bulk_create(
        TargetHealth(
            target=checked,
            time=start + dt.timedelta(minutes=n),
            reachable=n != 11,
            nodes_ready=3,
            nodes_down=0 if n != 11 else 3,
            containers_running=n,
            error="" if n != 11 else "connection refused",
        )
        for n in range(12)
    )
    response = charlie_client.get(CLOUDS)
    assert response.status_code == 200
    section = text_of(by_id(response, f"cloud-{checked.pk}"))
    assert section == "eu-west"
    page = response.content.decode()
    assert "Unreachable" in page and "connection refused" in page
    timeline = by_class(response, "health-timeline")
    assert len(timeline) == 1
    assert "The last 10 checks of eu-west" in text_of(timeline[0])
    assert text_of(timeline[0]).count("connection refused") == 1
    assert f"cloud-{unchecked.pk}" in page
    assert "Monitoring has not checked this cloud yet." in page


def test_the_clouds_page_takes_a_constant_number_of_queries(charlie_client: Client) -> None:
    now = timezone.now()
    few = queries_for(charlie_client, CLOUDS)
    for number in range(5):
        target = make_target(f"cloud-{number}")
        TargetHealth.objects.bulk_create(
            TargetHealth(target=target, time=now - dt.timedelta(minutes=m), reachable=True) for m in range(15)
        )
        make_deployments(target, 3)
    assert queries_for(charlie_client, CLOUDS) == few


# --- deployments ---------------------------------------------------------------------------------------------


def test_deployments_can_be_filtered_by_state_cloud_owner_and_id_or_name(charlie_client: Client) -> None:
    east, west = make_target("east"), make_target("west")
    make_deployments(east, 3, state="running", owner="barcelona")
    make_deployments(east, 2, state="failed", owner="girona")
    make_deployments(west, 1, state="running", owner="girona")
    Organization.objects.create(slug="barcelona", name="Barcelona", kind=Organization.Kind.PUBLIC_ADMINISTRATION)
    Organization.objects.create(slug="girona", name="Girona", kind=Organization.Kind.PUBLIC_ADMINISTRATION)

    def listed(**query: str) -> str:
        response = charlie_client.get(DEPLOYMENTS, query)
        assert response.status_code == 200
        return text_of(by_class(response, "table-scroll")[0]) if by_class(response, "table-scroll") else ""

    assert "6 deployments" in listed()
    assert "2 deployments" in listed(state="failed")
    assert "One deployment" in listed(target="west")
    assert "3 deployments" in listed(owner="girona")
    assert "One deployment" in listed(state="running", owner="girona", target="west")
    one = Deployment.objects.filter(state="failed").first()
    assert one is not None
    assert "One deployment" in listed(q=one.pk)
    assert "2 deployments" in listed(q="app-failed")
    assert "2 / 3" in listed(q=one.pk)  # steps done of the current generation
    assert charlie_client.get(DEPLOYMENTS, {"state": "exploded"}).status_code == 400


def test_deployments_are_paginated_in_a_constant_number_of_queries(
    charlie_client: Client, django_assert_max_num_queries: Any
) -> None:
    target = make_target("big")
    make_deployments(target, 3)
    few = queries_for(charlie_client, DEPLOYMENTS)
    make_deployments(target, 120, state="failed")
    assert queries_for(charlie_client, DEPLOYMENTS) == few
    with django_assert_max_num_queries(8):
        response = charlie_client.get(DEPLOYMENTS, {"page": 3})
    assert "Page 3 of 3" in response.content.decode()
    assert "123 deployments" in response.content.decode()


# --- the audit trail ---------------------------------------------------------------------------------------------


def test_the_audit_trail_can_be_filtered(
    alice: Any, charlie: Any, charlie_client: Client, submitted: ServiceVersion
) -> None:
    services.version_approve(actor=actor(charlie), version=submitted)

    def listed(**query: str) -> str:
        response = charlie_client.get(AUDIT, query)
        assert response.status_code == 200
        return text_of(by_class(response, "audit")[0]) if by_class(response, "audit") else ""

    everything = listed()
    assert "service.created" in everything and "version.published" in everything
    by_action = listed(action="version.")
    assert "version.uploaded" in by_action and "version.published" in by_action
    assert "service.created" not in by_action
    assert "version.published" not in listed(actor="alice")
    assert "service.created" in listed(organization="opencivic")
    assert (
        listed(organization="opencivic", object_type="serviceversion", object_id=str(submitted.pk)).count("version.")
        == 3
    )  # uploaded, submitted, published
    today = timezone.localdate()
    assert "version.published" in listed(since=today.isoformat(), until=today.isoformat())
    assert listed(until=(today - dt.timedelta(days=1)).isoformat()) == ""
    assert "192.0.2.10" in everything  # where from


def test_the_audit_trail_takes_a_constant_number_of_queries(
    alice: Any, charlie_client: Client, publisher_org: Organization, django_assert_max_num_queries: Any
) -> None:
    services.service_create(actor=actor(alice), publisher=publisher_org, name="First")
    few = queries_for(charlie_client, AUDIT)
    for number in range(60):
        services.service_create(actor=actor(alice), publisher=publisher_org, name=f"Service {number}")
    assert queries_for(charlie_client, AUDIT) == few
    with django_assert_max_num_queries(8):
        charlie_client.get(AUDIT, {"page": 2})
