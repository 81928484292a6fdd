"""Shared fixtures: the demo people of three organizations and one outsider's organizations.

alice publishes for OpenCivic, bob subscribes for the City of Barcelona,
charlie operates the platform; mallory belongs to other organizations of each kind
and must never see theirs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import translation
from rest_framework.test import APIClient

from catalogue import services
from catalogue.models import Membership, Organization, Service, ServiceVersion, Subscription
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

DOCKER_TEMPLATE = """\
tosca_definitions_version: tosca_simple_yaml_1_3
description: A web page served by a container.
metadata:
  template_name: hello-web
  template_version: "1.0"
topology_template:
  inputs:
    greeting:
      type: string
      description: What the page says.
      default: Hello
    replicas:
      type: integer
      default: 1
      constraints:
        - in_range: [1, 5]
  node_templates:
    web:
      type: tosca.nodes.Container.Application.Docker
      artifacts:
        image:
          file: busybox:latest
          type: tosca.artifacts.Deployment.Image.Container.Docker
      requirements:
        - host: docker
    docker:
      type: tosca.nodes.Container.Runtime
      requirements:
        - host: server
    server:
      type: tosca.nodes.Compute
"""

INVALID_TEMPLATE = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    web:
      type: tosca.nodes.DoesNotExist
"""


def pytest_sessionstart(session: pytest.Session) -> None:
    """`make test` sets AGORA_REQUIRE_DOCKER: there, Docker tests must run, never be skipped for want of a daemon."""
    if os.environ.get("AGORA_REQUIRE_DOCKER") != "1":
        return
    import docker  # type: ignore[import-untyped]

    try:
        docker.from_env(timeout=5).ping()
    except Exception as exc:
        pytest.exit(f"AGORA_REQUIRE_DOCKER=1 but Docker does not answer ({exc}); run scripts/prepare-host.sh", 2)


@pytest.fixture(autouse=True)
def _fresh_throttles() -> Iterator[None]:
    """The API's rate counts live in the cache, per process: each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _test_settings(tmp_path: Path, settings: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    # PBKDF2's deliberate slowness costs half a second per demo user; tests do not need it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _default_language_outside_requests() -> Iterator[None]:
    """Django's LocaleMiddleware activates a request's language and leaves its thread in it; what a test
    runs outside requests (services, checks) speaks the default language whatever ran before."""
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture
def publisher_org(db: None) -> Organization:
    return OrganizationFactory.create(slug="opencivic", name="OpenCivic", kind=Organization.Kind.PUBLISHER)


@pytest.fixture
def subscriber_org(db: None) -> Organization:
    return OrganizationFactory.create(
        slug="barcelona", name="City of Barcelona", kind=Organization.Kind.PUBLIC_ADMINISTRATION
    )


@pytest.fixture
def operator_org(db: None) -> Organization:
    return OrganizationFactory.create(slug="agora-ops", name="Agora Operations", kind=Organization.Kind.OPERATOR)


@pytest.fixture
def alice(publisher_org: Organization) -> Any:
    user = UserFactory.create(username="alice")
    MembershipFactory.create(user=user, organization=publisher_org, role=Membership.Role.ADMIN)
    return user


@pytest.fixture
def bob(subscriber_org: Organization) -> Any:
    user = UserFactory.create(username="bob")
    MembershipFactory.create(user=user, organization=subscriber_org, role=Membership.Role.ADMIN)
    return user


@pytest.fixture
def charlie(operator_org: Organization) -> Any:
    user = UserFactory.create(username="charlie")
    MembershipFactory.create(user=user, organization=operator_org, role=Membership.Role.ADMIN)
    return user


@pytest.fixture
def mallory(db: None) -> Any:
    """An administrator of another publisher and another public administration."""
    user = UserFactory.create(username="mallory")
    for slug, kind in (
        ("rival-soft", Organization.Kind.PUBLISHER),
        ("girona", Organization.Kind.PUBLIC_ADMINISTRATION),
    ):
        MembershipFactory.create(
            user=user, organization=OrganizationFactory.create(slug=slug, kind=kind), role=Membership.Role.ADMIN
        )
    return user


def actor(user: Any) -> services.Actor:
    return services.Actor(user=user, ip="192.0.2.10")


@pytest.fixture
def service(alice: Any, publisher_org: Organization) -> Service:
    return services.service_create(
        actor=actor(alice),
        publisher=publisher_org,
        name="Citizen Forms",
        summary="Online forms for citizens' requests",
        description="Build forms, collect **requests**, export them.",
        category="e-government",
        tags=["forms", "Participation"],
    )


def upload(user: Any, service: Service, version: str = "1.0.0", text: str = DOCKER_TEMPLATE) -> ServiceVersion:
    return services.version_upload(
        actor=actor(user), service=service, version=version, filename="service.yaml", data=text.encode()
    )


@pytest.fixture
def draft_version(alice: Any, service: Service) -> ServiceVersion:
    return upload(alice, service)


@pytest.fixture
def published_version(alice: Any, charlie: Any, draft_version: ServiceVersion) -> ServiceVersion:
    services.version_submit(actor=actor(alice), version=draft_version)
    return services.version_approve(actor=actor(charlie), version=draft_version)


@pytest.fixture
def subscription(bob: Any, subscriber_org: Organization, published_version: ServiceVersion) -> Subscription:
    return services.subscription_create(
        actor=actor(bob), subscriber=subscriber_org, version=published_version, name="forms", inputs={"replicas": 2}
    )


@pytest.fixture
def api() -> Iterator[APIClient]:
    client = APIClient()
    yield client
    client.logout()


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client
