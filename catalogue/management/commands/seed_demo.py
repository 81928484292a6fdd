"""Creates the demo organizations, people and published services; running it again changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from catalogue import services
from catalogue.models import Membership, Organization, Service, ServiceVersion

DEMO_DIR = Path(__file__).resolve().parent.parent.parent / "demo"


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    organization: str
    about: str


ORGANIZATIONS = [
    ("opencivic", "OpenCivic Software", Organization.Kind.PUBLISHER),
    ("barcelona", "Ajuntament de Barcelona", Organization.Kind.PUBLIC_ADMINISTRATION),
    ("agora-ops", "Agora Operations", Organization.Kind.OPERATOR),
]
USERS = [
    DemoUser("alice", "agora-demo-alice", "opencivic", "publisher"),
    DemoUser("bob", "agora-demo-bob", "barcelona", "subscriber"),
    DemoUser("charlie", "agora-demo-charlie", "agora-ops", "operator"),
]
SERVICES = [
    (
        "citizen-forms",
        "Citizen Forms",
        "Online forms for citizens' requests",
        "e-government",
        ["forms", "participation"],
        "1.0.0",
    ),
    (
        "open-data-portal",
        "Open Data Portal",
        "Publish datasets as open data",
        "open-data",
        ["data", "transparency"],
        "2.1.0",
    ),
    (
        "parking-sensors",
        "Parking Sensors",
        "Free parking spaces on a map, from street sensors",
        "mobility",
        ["iot", "mobility"],
        "0.9.0",
    ),
]


class Command(BaseCommand):
    help = "Creates demo organizations, users and published services (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            orgs = {
                slug: Organization.objects.get_or_create(slug=slug, defaults={"name": name, "kind": kind})[0]
                for slug, name, kind in ORGANIZATIONS
            }
            users = {}
            for demo in USERS:
                user, created = get_user_model().objects.get_or_create(username=demo.username)
                if created:
                    user.set_password(demo.password)
                    user.email = f"{demo.username}@example.org"
                    # The operator also runs the Django admin.
                    user.is_staff = user.is_superuser = demo.about == "operator"
                    user.save()
                Membership.objects.get_or_create(
                    user=user, organization=orgs[demo.organization], defaults={"role": Membership.Role.ADMIN}
                )
                users[demo.about] = user
            publisher = services.Actor(user=users["publisher"])
            operator = services.Actor(user=users["operator"])
            for slug, name, summary, category, tags, version in SERVICES:
                service = Service.objects.filter(slug=slug).first() or services.service_create(
                    actor=publisher,
                    publisher=orgs["opencivic"],
                    name=name,
                    slug=slug,
                    summary=summary,
                    description=(DEMO_DIR / f"{slug}.yaml").read_text().split("description: ", 1)[1].split("\n")[0],
                    category=category,
                    tags=tags,
                )
                if service.versions.filter(version=version).exists():
                    continue
                service_version = services.version_upload(
                    actor=publisher,
                    service=service,
                    version=version,
                    filename=f"{slug}.yaml",
                    data=(DEMO_DIR / f"{slug}.yaml").read_bytes(),
                    changelog="First release.",
                )
                services.version_submit(actor=publisher, version=service_version)
                services.version_approve(actor=operator, version=service_version)
        published = ServiceVersion.objects.filter(state=ServiceVersion.State.PUBLISHED).count()
        self.stdout.write(f"Demo ready: {len(orgs)} organizations, {published} published versions.")
        for demo in USERS:
            self.stdout.write(f"  {demo.about:<10} {demo.username:<8} password: {demo.password}")
