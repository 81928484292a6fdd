from __future__ import annotations

from typing import Any

import pytest

from catalogue.models import Membership, Organization
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_me_lists_memberships(alice: Any) -> None:
    body = client_for(alice).get("/api/v1/me/").json()
    assert body == {
        "username": "alice",
        "is_operator": False,
        "memberships": [{"organization": "opencivic", "kind": "publisher", "role": "admin"}],
    }


def test_only_operators_create_organizations(alice: Any, charlie: Any) -> None:
    body = {"name": "Comune di Torino", "kind": "public_administration"}
    assert client_for(alice).post("/api/v1/organizations/", body, format="json").status_code == 403
    answer = client_for(charlie).post("/api/v1/organizations/", body, format="json")
    assert answer.status_code == 201
    assert Organization.objects.get(slug="comune-di-torino").kind == "public_administration"


def test_admin_adds_changes_and_removes_members(bob: Any) -> None:
    UserFactory.create(username="dora")
    client = client_for(bob)
    answer = client.post(
        "/api/v1/memberships/", {"organization": "barcelona", "user": "dora", "role": "viewer"}, format="json"
    )
    assert answer.status_code == 201, answer.content
    membership_id = answer.json()["id"]
    assert client.patch(f"/api/v1/memberships/{membership_id}/", {"role": "editor"}, format="json").json()["role"] == (
        "editor"
    )
    assert client.delete(f"/api/v1/memberships/{membership_id}/").status_code == 204
    assert not Membership.objects.filter(user__username="dora").exists()


def test_last_admin_cannot_be_removed(bob: Any) -> None:
    membership = Membership.objects.get(user=bob)
    answer = client_for(bob).delete(f"/api/v1/memberships/{membership.pk}/")
    assert answer.status_code == 409
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_editor_cannot_manage_members(bob: Any, subscriber_org: Organization) -> None:
    editor = UserFactory.create(username="ed")
    Membership.objects.create(user=editor, organization=subscriber_org, role="editor")
    UserFactory.create(username="dora")
    answer = client_for(editor).post(
        "/api/v1/memberships/", {"organization": "barcelona", "user": "dora", "role": "admin"}, format="json"
    )
    assert answer.status_code == 403
