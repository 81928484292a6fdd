"""Tenant isolation: another organization's user gets 404 on every endpoint; anonymous gets 401 or public data only."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from catalogue.models import AuditEvent, Membership, ServiceVersion, Subscription
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(
    alice: Any, bob: Any, charlie: Any, mallory: Any, draft_version: ServiceVersion, subscription: Subscription
) -> dict[str, Any]:
    """A draft service (with a draft version) and a subscription, none of them mallory's."""
    from catalogue import services
    from tests.conftest import actor

    hidden = services.service_create(actor=actor(alice), publisher=draft_version.service.publisher, name="Hidden Draft")
    from tests.conftest import upload

    hidden_version = upload(alice, hidden)
    return {
        "hidden_service": hidden,
        "hidden_version": hidden_version,
        "subscription": subscription,
        "alice_membership": Membership.objects.get(user=alice),
        "audit_event": AuditEvent.objects.filter(organization__slug="barcelona").first(),
        "publisher": draft_version.service.publisher,
    }


# (method, url template, body) — each names an object mallory must not see.
FOREIGN_OBJECT_CALLS = [
    ("get", "/api/v1/services/{hidden_service.slug}/", None),
    ("patch", "/api/v1/services/{hidden_service.slug}/", {"summary": "pwned"}),
    ("post", "/api/v1/services/{hidden_service.slug}/versions/", {}),
    ("get", "/api/v1/versions/{hidden_version.pk}/", None),
    ("get", "/api/v1/versions/{hidden_version.pk}/template/", None),
    ("post", "/api/v1/versions/{hidden_version.pk}/submit/", None),
    ("post", "/api/v1/versions/{hidden_version.pk}/approve/", None),
    ("post", "/api/v1/versions/{hidden_version.pk}/reject/", {"reason": "x"}),
    ("post", "/api/v1/versions/{hidden_version.pk}/deprecate/", None),
    ("post", "/api/v1/versions/{hidden_version.pk}/retire/", None),
    ("get", "/api/v1/subscriptions/{subscription.pk}/", None),
    ("get", "/api/v1/organizations/{publisher.slug}/", None),
    ("get", "/api/v1/memberships/{alice_membership.pk}/", None),
    ("patch", "/api/v1/memberships/{alice_membership.pk}/", {"role": "viewer"}),
    ("delete", "/api/v1/memberships/{alice_membership.pk}/", None),
    ("get", "/api/v1/audit-events/{audit_event.pk}/", None),
    ("post", "/api/v1/subscriptions/{subscription.pk}/unsubscribe/", None),
    ("get", "/api/v1/deployments/{subscription.deployment_id}/", None),
    ("get", "/api/v1/deployments/{subscription.deployment_id}/events/", None),
    ("post", "/api/v1/deployments/{subscription.deployment_id}/retry/", None),
    ("post", "/api/v1/deployments/{subscription.deployment_id}/deploy/", None),
    ("get", "/api/v1/deployments/{subscription.deployment_id}/health/", None),
    ("get", "/api/v1/deployments/{subscription.deployment_id}/metrics/", None),
    ("get", "/api/v1/deployments/{subscription.deployment_id}/logs/", None),
    ("get", "/api/v1/deployments/{subscription.deployment_id}/alerts/", None),
    ("post", "/api/v1/deployments/{subscription.deployment_id}/upgrade/", {"version": "{subscription.version_id}"}),
    ("post", "/api/v1/deployments/{subscription.deployment_id}/cancel/", None),
    ("post", "/api/v1/deployments/{subscription.deployment_id}/undeploy/", None),
]


@pytest.mark.parametrize(("method", "url", "body"), FOREIGN_OBJECT_CALLS)
def test_another_organizations_user_gets_404(
    world: dict[str, Any], mallory: Any, method: str, url: str, body: Any
) -> None:
    response = getattr(client_for(mallory), method)(url.format(**world), body, format="json")
    assert response.status_code == 404, response.content
    world["hidden_version"].refresh_from_db()
    assert world["hidden_version"].state == ServiceVersion.State.DRAFT
    world["subscription"].refresh_from_db()
    assert world["subscription"].state == Subscription.State.ACTIVE
    assert world["subscription"].deployment.state == "pending"
    assert Membership.objects.filter(pk=world["alice_membership"].pk, role="admin").exists()


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/subscriptions/",
        "/api/v1/memberships/",
        "/api/v1/organizations/",
        "/api/v1/audit-events/",
        "/api/v1/versions/?state=draft",
    ],
)
def test_lists_hold_nothing_of_other_organizations(world: dict[str, Any], mallory: Any, url: str) -> None:
    response = client_for(mallory).get(url)
    assert response.status_code == 200
    body = response.content.decode()
    for foreign in ("barcelona", "opencivic", "alice", "Hidden Draft", '"forms"'):
        assert foreign not in body


ANONYMOUS_PRIVATE = [
    ("get", "/api/v1/subscriptions/"),
    ("post", "/api/v1/subscriptions/"),
    ("get", "/api/v1/memberships/"),
    ("get", "/api/v1/organizations/"),
    ("get", "/api/v1/audit-events/"),
    ("get", "/api/v1/me/"),
    ("get", "/api/v1/deployments/"),
    ("get", "/api/v1/targets/"),
    ("post", "/api/v1/services/"),
    ("post", "/api/v1/validate/"),
    ("post", "/api/v1/versions/1/submit/"),
]


@pytest.mark.parametrize(("method", "url"), ANONYMOUS_PRIVATE)
def test_anonymous_gets_401_outside_the_public_catalogue(world: dict[str, Any], method: str, url: str) -> None:
    assert getattr(APIClient(), method)(url).status_code == 401


def test_anonymous_sees_only_published_catalogue_data(world: dict[str, Any], published_version: Any) -> None:
    client = APIClient()
    services_page = client.get("/api/v1/services/").json()
    assert [s["slug"] for s in services_page["results"]] == ["citizen-forms"]
    assert client.get(f"/api/v1/services/{world['hidden_service'].slug}/").status_code == 404
    versions = client.get("/api/v1/versions/").json()["results"]
    assert [v["state"] for v in versions] == ["published"]
    assert client.get(f"/api/v1/versions/{world['hidden_version'].pk}/").status_code == 404


def test_naming_another_organization_as_subscriber_is_refused(
    world: dict[str, Any], mallory: Any, published_version: ServiceVersion
) -> None:
    response = client_for(mallory).post(
        "/api/v1/subscriptions/",
        {"name": "steal", "subscriber": "barcelona", "version": published_version.pk},
        format="json",
    )
    assert response.status_code == 400
    assert "subscriber" in response.json()
    assert not Subscription.objects.filter(name="steal").exists()


def test_naming_another_publishers_draft_version_is_refused(world: dict[str, Any], mallory: Any) -> None:
    response = client_for(mallory).post(
        "/api/v1/subscriptions/",
        {"name": "peek", "subscriber": "girona", "version": world["hidden_version"].pk},
        format="json",
    )
    assert response.status_code == 400
    assert "version" in response.json()


def test_publishing_for_another_organization_is_refused(world: dict[str, Any], mallory: Any) -> None:
    response = client_for(mallory).post("/api/v1/services/", {"name": "Fake", "publisher": "opencivic"}, format="json")
    assert response.status_code == 400
    assert "publisher" in response.json()


def test_adding_members_to_another_organization_is_refused(world: dict[str, Any], mallory: Any) -> None:
    response = client_for(mallory).post(
        "/api/v1/memberships/", {"organization": "opencivic", "user": "mallory", "role": "admin"}, format="json"
    )
    assert response.status_code == 400
    assert not Membership.objects.filter(user__username="mallory", organization__slug="opencivic").exists()


def test_changing_a_published_service_of_another_publisher_is_forbidden(
    world: dict[str, Any], mallory: Any, published_version: ServiceVersion
) -> None:
    slug = published_version.service.slug
    response = client_for(mallory).patch(f"/api/v1/services/{slug}/", {"summary": "pwned"}, format="json")
    assert response.status_code == 403
    published_version.service.refresh_from_db()
    assert published_version.service.summary != "pwned"


def test_browsable_api_forms_list_only_the_callers_organizations(world: dict[str, Any], mallory: Any) -> None:
    for url in ("/api/v1/subscriptions/", "/api/v1/services/", "/api/v1/memberships/"):
        page = client_for(mallory).get(url, HTTP_ACCEPT="text/html").content.decode()
        assert 'value="girona"' in page or 'value="rival-soft"' in page
        assert 'value="barcelona"' not in page and 'value="opencivic"' not in page
        options = client_for(mallory).options(url).content.decode()
        assert "barcelona" not in options and "opencivic" not in options
