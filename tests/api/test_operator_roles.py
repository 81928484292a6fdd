"""Operator powers follow the role in the operator organization; members are managed without leaking who exists.

A viewer of the operator organization reads everything, as operators do, and acts nowhere.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from catalogue.models import Membership, Organization, ServiceVersion, Subscription
from monitoring.models import AlertRule
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(operator_org: Organization) -> Any:
    user = UserFactory.create(username="victor")
    Membership.objects.create(user=user, organization=operator_org, role=Membership.Role.VIEWER)
    return user


@pytest.fixture
def editor(operator_org: Organization) -> Any:
    user = UserFactory.create(username="edith")
    Membership.objects.create(user=user, organization=operator_org, role=Membership.Role.EDITOR)
    return user


@pytest.fixture
def submitted(alice: Any, draft_version: ServiceVersion) -> ServiceVersion:
    assert client_for(alice).post(f"/api/v1/versions/{draft_version.pk}/submit/").status_code == 200
    return draft_version


def test_an_operator_viewer_reads_what_operators_read(viewer: Any, submitted: ServiceVersion) -> None:
    client = client_for(viewer)
    assert client.get("/api/v1/me/").json()["is_operator"] is True
    assert client.get(f"/api/v1/versions/{submitted.pk}/").status_code == 200
    assert client.get("/api/v1/audit-events/").json()["count"] > 0


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_an_operator_viewer_cannot_decide_on_a_version(viewer: Any, submitted: ServiceVersion, action: str) -> None:
    answer = client_for(viewer).post(f"/api/v1/versions/{submitted.pk}/{action}/", {"reason": "no"}, format="json")
    assert answer.status_code == 403, answer.content
    assert "operator organization" in answer.json()["detail"]
    submitted.refresh_from_db()
    assert submitted.state == ServiceVersion.State.SUBMITTED


def test_an_operator_editor_approves(editor: Any, submitted: ServiceVersion) -> None:
    answer = client_for(editor).post(f"/api/v1/versions/{submitted.pk}/approve/")
    assert answer.status_code == 200, answer.content
    assert answer.json()["state"] == "published"


@pytest.mark.parametrize("kind", ["operator", "public_administration"])
def test_an_operator_viewer_cannot_create_organizations(viewer: Any, kind: str) -> None:
    answer = client_for(viewer).post("/api/v1/organizations/", {"name": "Shadow Ops", "kind": kind}, format="json")
    assert answer.status_code == 403
    assert not Organization.objects.filter(slug="shadow-ops").exists()


def test_only_an_operator_admin_creates_organizations(editor: Any, charlie: Any) -> None:
    body = {"name": "Comune di Torino", "kind": "public_administration"}
    assert client_for(editor).post("/api/v1/organizations/", body, format="json").status_code == 403
    assert client_for(charlie).post("/api/v1/organizations/", body, format="json").status_code == 201


def test_an_operator_viewer_cannot_add_members_anywhere(viewer: Any, bob: Any) -> None:
    UserFactory.create(username="dora")
    answer = client_for(viewer).post(
        "/api/v1/memberships/", {"organization": "barcelona", "user": "dora", "role": "admin"}, format="json"
    )
    assert answer.status_code in (400, 403), answer.content
    assert not Membership.objects.filter(user__username="dora").exists()


def test_an_operator_viewer_cannot_raise_its_own_role(viewer: Any) -> None:
    membership = Membership.objects.get(user=viewer)
    answer = client_for(viewer).patch(f"/api/v1/memberships/{membership.pk}/", {"role": "admin"}, format="json")
    assert answer.status_code == 403
    membership.refresh_from_db()
    assert membership.role == Membership.Role.VIEWER


def test_an_operator_viewer_cannot_change_anothers_role(viewer: Any, bob: Any) -> None:
    membership = Membership.objects.get(user=bob)
    answer = client_for(viewer).patch(f"/api/v1/memberships/{membership.pk}/", {"role": "viewer"}, format="json")
    assert answer.status_code == 403
    assert client_for(viewer).delete(f"/api/v1/memberships/{membership.pk}/").status_code == 403
    membership.refresh_from_db()
    assert membership.role == Membership.Role.ADMIN


@pytest.mark.parametrize("action", ["retry", "deploy", "cancel", "undeploy"])
def test_an_operator_viewer_cannot_act_on_a_deployment(viewer: Any, subscription: Subscription, action: str) -> None:
    deployment = subscription.deployment
    assert deployment is not None
    before = (deployment.state, deployment.generation)
    answer = client_for(viewer).post(f"/api/v1/deployments/{deployment.pk}/{action}/")
    assert answer.status_code == 403, answer.content
    deployment.refresh_from_db()
    subscription.refresh_from_db()
    assert (deployment.state, deployment.generation) == before
    assert subscription.state == Subscription.State.ACTIVE


def test_an_operator_viewer_cannot_set_alert_rules(viewer: Any, subscription: Subscription) -> None:
    assert subscription.deployment is not None
    body = {"deployment": subscription.deployment.pk, "kind": "cpu", "threshold": 50}
    answer = client_for(viewer).post("/api/v1/alert-rules/", body, format="json")
    assert answer.status_code == 403, answer.content
    assert not AlertRule.objects.filter(deployment=subscription.deployment).exists()


def test_the_portal_shows_a_viewer_the_review_without_the_decision(viewer: Any, submitted: ServiceVersion) -> None:
    client = Client()
    client.force_login(viewer)
    page = client.get(f"/operate/versions/{submitted.pk}/")
    assert page.status_code == 200
    assert b"Approve and publish" not in page.content
    client.post(f"/operate/versions/{submitted.pk}/approve/")
    submitted.refresh_from_db()
    assert submitted.state == ServiceVersion.State.SUBMITTED


# --- memberships ------------------------------------------------------------------------------------------


def test_adding_a_member_without_a_role_is_a_clear_400(bob: Any) -> None:
    UserFactory.create(username="dora")
    answer = client_for(bob).post("/api/v1/memberships/", {"organization": "barcelona", "user": "dora"}, format="json")
    assert answer.status_code == 400
    assert "role" in answer.json()
    assert not Membership.objects.filter(user__username="dora").exists()


def test_patching_a_membership_without_a_role_changes_nothing(bob: Any, subscriber_org: Organization) -> None:
    dora = UserFactory.create(username="dora")
    membership = Membership.objects.create(user=dora, organization=subscriber_org, role=Membership.Role.EDITOR)
    answer = client_for(bob).patch(f"/api/v1/memberships/{membership.pk}/", {}, format="json")
    assert answer.status_code == 200
    assert answer.json()["role"] == "editor"
    assert client_for(bob).put(f"/api/v1/memberships/{membership.pk}/", {}, format="json").status_code == 400


def test_the_last_admin_cannot_demote_itself(bob: Any) -> None:
    membership = Membership.objects.get(user=bob)
    answer = client_for(bob).patch(f"/api/v1/memberships/{membership.pk}/", {"role": "viewer"}, format="json")
    assert answer.status_code == 409
    assert "last administrator" in answer.json()["detail"]
    membership.refresh_from_db()
    assert membership.role == Membership.Role.ADMIN


def test_an_admin_steps_down_once_another_admin_exists(bob: Any, subscriber_org: Organization) -> None:
    dora = UserFactory.create(username="dora")
    Membership.objects.create(user=dora, organization=subscriber_org, role=Membership.Role.ADMIN)
    membership = Membership.objects.get(user=bob)
    answer = client_for(bob).patch(f"/api/v1/memberships/{membership.pk}/", {"role": "viewer"}, format="json")
    assert answer.status_code == 200


def test_no_form_or_options_answer_lists_the_platforms_usernames(bob: Any, alice: Any, charlie: Any) -> None:
    client = client_for(bob)
    page = client.get("/api/v1/memberships/", HTTP_ACCEPT="text/html")
    options = client.options("/api/v1/memberships/")
    for answer in (page, options):
        assert answer.status_code == 200
        assert b"alice" not in answer.content
        assert b"charlie" not in answer.content


def test_someone_who_may_not_add_members_learns_nothing_about_usernames(bob: Any, alice: Any) -> None:
    outsider = UserFactory.create(username="eve")
    client = client_for(outsider)
    existing = client.post(
        "/api/v1/memberships/", {"organization": "barcelona", "user": "alice", "role": "viewer"}, format="json"
    )
    missing = client.post(
        "/api/v1/memberships/", {"organization": "barcelona", "user": "nobody-here", "role": "viewer"}, format="json"
    )
    assert existing.status_code == missing.status_code == 400
    assert existing.json() == missing.json()


def test_an_admin_adding_a_missing_or_inactive_account_reads_one_sentence(bob: Any) -> None:
    UserFactory.create(username="gone", is_active=False)
    client = client_for(bob)
    answers = [
        client.post(
            "/api/v1/memberships/", {"organization": "barcelona", "user": name, "role": "viewer"}, format="json"
        )
        for name in ("gone", "nobody-here")
    ]
    assert [a.status_code for a in answers] == [400, 400]
    details = [
        a.json()["detail"].replace(name, "NAME") for a, name in zip(answers, ("gone", "nobody-here"), strict=True)
    ]
    assert details[0] == details[1]
    assert "No account named" in details[0]


# --- filters that must not tell which ids exist ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/alerts/", "/api/v1/alert-rules/"])
def test_a_deployment_filter_answers_alike_for_anothers_id_and_a_missing_one(
    path: str, subscription: Subscription, mallory: Any
) -> None:
    assert subscription.deployment is not None
    client = client_for(mallory)
    theirs = client.get(path, {"deployment": subscription.deployment.pk})
    missing = client.get(path, {"deployment": "d-does-not-exist"})
    assert theirs.status_code == missing.status_code == 200
    assert theirs.json() == missing.json()
    assert theirs.json()["count"] == 0
