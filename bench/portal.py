"""Server time of the portal's main pages with a full catalogue, and their SQL queries.

    .venv/bin/python bench/portal.py [--requests 30] [--services 1000] [--subscriptions 10000]

The bench fills a scratch PostgreSQL database of its own (bench_portal, or the database named by
BENCH_DATABASE_URL; created and migrated at start, dropped at the end) in two steps. First a small
catalogue (10 services, 100 subscriptions): each page is requested once and its queries counted.
Then the full one, written with bulk_create (SERVICES services of 20 publishers with 2 versions
each, about 50 of them waiting for review; SUBSCRIPTIONS subscriptions of 200 public administrations, each
with its deployment row and three steps on one target (nothing runs: no worker, no Docker); 20,000
audit events; a health timeline of the target). Each page is then requested REQUESTS times through
Django's test client, signed in as the person who uses it, and the bench prints p50 and p95 of the
time spent serving it, and its queries at both sizes: they must not grow with the data.

Target: every page under 300 ms at p95, and the same number of queries at both sizes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_portal")
DATA_DIR = tempfile.mkdtemp(prefix="agora-bench-portal-")
os.environ.update(DATABASE_URL=DATABASE_URL, AGORA_DATA_DIR=DATA_DIR)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.scratch import scratch_database  # noqa: E402
from catalogue import services  # noqa: E402
from catalogue.models import (  # noqa: E402
    AuditEvent,
    Membership,
    Organization,
    Service,
    ServiceVersion,
    Subscription,
)
from crane.models import Target  # noqa: E402
from monitoring.models import TargetHealth  # noqa: E402
from orchestrator.models import Deployment, Step  # noqa: E402

TARGET_MS = 300.0
PUBLISHERS = 20
ADMINISTRATIONS = 200
AUDIT_EVENTS = 20_000
WAITING_FOR_REVIEW = 50
BATCH = 2000
STEPS = (("network", "network"), ("web.service", "service"), ("web.wait", "wait"))
TEMPLATE = (REPO / "catalogue" / "demo" / "citizen-forms.yaml").read_bytes()
WORDS = ["forms", "parking", "open data", "mobility", "water", "noise", "permits", "library", "waste", "tax"]


@contextmanager
def uploads_removed() -> Iterator[None]:
    """The stored template lives in the bench's own data folder, removed at the end."""
    try:
        yield
    finally:
        shutil.rmtree(DATA_DIR, ignore_errors=True)


class Catalogue:
    """The people, organizations and one target; then services and subscriptions, added in bulk."""

    def __init__(self) -> None:
        self.operator = self._person("charlie", "agora-ops", Organization.Kind.OPERATOR)
        self.publisher = self._person("alice", "opencivic", Organization.Kind.PUBLISHER)
        self.subscriber = self._person("bob", "barcelona", Organization.Kind.PUBLIC_ADMINISTRATION)
        self.publishers = [
            self.publisher.memberships.get().organization,
            *Organization.objects.bulk_create(
                Organization(slug=f"publisher-{n}", name=f"Publisher {n}", kind=Organization.Kind.PUBLISHER)
                for n in range(1, PUBLISHERS)
            ),
        ]
        self.administrations = [
            self.subscriber.memberships.get().organization,
            *Organization.objects.bulk_create(
                Organization(slug=f"city-{n}", name=f"City {n}", kind=Organization.Kind.PUBLIC_ADMINISTRATION)
                for n in range(1, ADMINISTRATIONS)
            ),
        ]
        self.target = Target.objects.create(
            name="local", provider="on-premises", public_host="127.0.0.1", endpoint="unix:///var/run/docker.sock"
        )
        # One real upload gives the validation report, inputs and stored file every bulk version shares.
        actor = services.Actor(user=self.publisher)
        first = services.service_create(actor=actor, publisher=self.publishers[0], name="Citizen Forms 0")
        self.model = services.version_upload(
            actor=actor, service=first, version="1.0.0", filename="citizen-forms.yaml", data=TEMPLATE
        )
        services.version_submit(actor=actor, version=self.model)
        services.version_approve(actor=services.Actor(user=self.operator), version=self.model)
        self.services = 1
        self.subscriptions = 0

    @staticmethod
    def _person(username: str, slug: str, kind: str) -> User:
        user = User.objects.create_user(username, f"{username}@example.org", "bench-password")
        organization = Organization.objects.create(slug=slug, name=slug.title(), kind=kind)
        Membership.objects.create(user=user, organization=organization, role=Membership.Role.ADMIN)
        return user

    def add_services(self, count: int) -> None:
        start = self.services
        new = Service.objects.bulk_create(
            (
                Service(
                    publisher=self.publishers[n % PUBLISHERS],
                    slug=f"service-{n}",
                    name=f"{WORDS[n % len(WORDS)].title()} service {n}",
                    summary=f"Manages {WORDS[n % len(WORDS)]} for a city ({n})",
                    description=f"A service about **{WORDS[(n * 7) % len(WORDS)]}**.",
                    category=WORDS[n % len(WORDS)].replace(" ", "-"),
                    tags=[WORDS[n % len(WORDS)], WORDS[(n + 3) % len(WORDS)]],
                    state=Service.State.PUBLISHED,
                )
                for n in range(start, start + count)
            ),
            batch_size=BATCH,
        )
        model = self.model
        now = timezone.now()
        versions = []
        for index, service in enumerate(new):
            waiting = index % max(1, count // WAITING_FOR_REVIEW) == 0  # about 50 wait for review
            for minor, state in ((0, "published"), (1, "submitted" if waiting else "draft")):
                versions.append(
                    ServiceVersion(
                        service=service,
                        version=f"1.{minor}.0",
                        major=1,
                        minor=minor,
                        template=model.template.name,
                        template_filename=model.template_filename,
                        template_sha256=model.template_sha256,
                        template_size=model.template_size,
                        validation_report=model.validation_report,
                        inputs_schema=model.inputs_schema,
                        state=state,
                        submitted_at=now if state != "draft" else None,
                        published_at=now if state == "published" else None,
                    )
                )
        ServiceVersion.objects.bulk_create(versions, batch_size=BATCH)
        self.services += count

    def add_subscriptions(self, count: int) -> None:
        published = list(ServiceVersion.objects.filter(state="published").values_list("pk", flat=True))
        start = self.subscriptions
        owners = [self.administrations[n % ADMINISTRATIONS] for n in range(start, start + count)]
        deployments = Deployment.objects.bulk_create(
            (
                Deployment(
                    name=f"{owner.slug}/instance-{n}",
                    owner=owner.slug,
                    target=self.target,
                    template=TEMPLATE,
                    template_filename="citizen-forms.yaml",
                    template_sha256=self.model.template_sha256,
                    plan={"steps": [], "outputs": {}},
                    generation=1,
                    state="failed" if n % 50 == 0 else "running",
                    outputs={"url": f"http://127.0.0.1:{30000 + n % 1000}/"},
                )
                for n, owner in zip(range(start, start + count), owners, strict=True)
            ),
            batch_size=BATCH,
        )
        Step.objects.bulk_create(
            (
                Step(deployment=d, generation=1, position=p, key=key, kind=kind, node="web", summary=key, state="done")
                for d in deployments
                for p, (key, kind) in enumerate(
                    (("network", "network"), ("web.service", "service"), ("web.wait", "wait"))
                )
            ),
            batch_size=BATCH * 3,
        )
        Subscription.objects.bulk_create(
            (
                Subscription(
                    subscriber=owner,
                    version_id=published[n % len(published)],
                    name=f"instance-{n}",
                    deployment=deployment,
                )
                for n, owner, deployment in zip(range(start, start + count), owners, deployments, strict=True)
            ),
            batch_size=BATCH,
        )
        self.subscriptions += count

    def add_history(self, events: int) -> None:
        now = timezone.now()
        AuditEvent.objects.bulk_create(
            (
                AuditEvent(
                    actor=self.subscriber,
                    actor_name="bob",
                    organization=self.administrations[n % ADMINISTRATIONS],
                    action=("subscription.created", "deployment.retried", "version.uploaded")[n % 3],
                    object_type="subscription",
                    object_id=str(n),
                    object_repr=f"instance-{n}",
                    data={"service": f"service-{n % 1000}"},
                    ip_address="192.0.2.10",
                    created_at=now - dt.timedelta(seconds=n),
                )
                for n in range(events)
            ),
            batch_size=BATCH,
        )
        TargetHealth.objects.bulk_create(
            TargetHealth(target=self.target, time=now - dt.timedelta(minutes=n), reachable=True, nodes_ready=1)
            for n in range(500)
        )


def pages(catalogue: Catalogue) -> list[tuple[str, User, str]]:
    """(name, who, URL) of the pages measured: a service and a deployment bob can see."""
    mine = Subscription.objects.filter(subscriber__slug="barcelona").order_by("pk").first()
    assert mine is not None and mine.deployment_id is not None
    service = mine.version.service
    alices = Service.objects.filter(publisher__slug="opencivic").order_by("pk").last()
    assert alices is not None
    alice, bob, charlie = catalogue.publisher, catalogue.subscriber, catalogue.operator
    return [
        ("catalogue", bob, "/"),
        ("search", bob, "/?q=parking"),
        ("service page", bob, f"/services/{service.slug}/"),
        ("my services", bob, "/subscriptions/"),
        ("deployment page", bob, f"/deployments/{mine.deployment_id}/"),
        ("publisher services", alice, "/publish/"),
        ("publisher service", alice, f"/publish/services/{alices.slug}/"),
        ("operator queue", charlie, "/operate/"),
        ("operator review", charlie, f"/operate/versions/{catalogue.model.pk}/"),
        ("clouds", charlie, "/operate/clouds/"),
        ("deployments list", charlie, "/operate/deployments/"),
        ("deployments filtered", charlie, "/operate/deployments/?state=failed&q=instance"),
        ("audit trail", charlie, "/operate/audit/"),
        ("audit filtered", charlie, "/operate/audit/?action=subscription.&organization=barcelona"),
    ]


def client_of(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"GET {url} answered {response.status_code}")
    return len(captured)


def timings(client: Client, url: str, requests: int) -> list[float]:
    for _ in range(3):  # warm up: templates compiled, connections open
        client.get(url)
    spent = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(url)
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=30, help="requests per page; p50 and p95 of them")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=10_000)
    args = parser.parse_args()

    with scratch_database(DATABASE_URL), uploads_removed():
        catalogue = Catalogue()
        catalogue.add_services(10)
        catalogue.add_subscriptions(100)
        catalogue.add_history(100)
        clients: dict[str, Client] = {}

        def client(user: User) -> Client:
            return clients.setdefault(user.get_username(), client_of(user))

        small = {name: queries(client(user), url) for name, user, url in pages(catalogue)}

        print(f"filling: {args.services} services, {args.subscriptions} subscriptions ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        catalogue.add_services(args.services - catalogue.services)
        catalogue.add_subscriptions(args.subscriptions - catalogue.subscriptions)
        catalogue.add_history(AUDIT_EVENTS)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"filled in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)

        rows: list[tuple[str, float, float, int, int]] = []
        for name, user, url in pages(catalogue):
            full = queries(client(user), url)
            spent = timings(client(user), url, args.requests)
            rows.append((name, statistics.median(spent), percentile(spent, 0.95), small[name], full))
            print(f"  {name}: {[round(t) for t in spent]}", file=sys.stderr, flush=True)

    print(
        f"\nportal pages, {args.services} services, {args.subscriptions} subscriptions, "
        f"{AUDIT_EVENTS} audit events; {args.requests} requests each (Django test client)"
    )
    print(f"{'page':<22}{'p50 ms':>9}{'p95 ms':>9}{'queries (small → full)':>25}")
    slow, growing = [], []
    for name, p50, p95, few, many in rows:
        print(f"{name:<22}{p50:>9.1f}{p95:>9.1f}{f'{few} → {many}':>25}")
        if p95 > TARGET_MS:
            slow.append(name)
        if many != few:
            growing.append(name)
    print(
        f"\ntarget: p95 under {TARGET_MS:.0f} ms on every page: {'met' if not slow else 'MISSED on ' + ', '.join(slow)}"
    )
    print(f"constant query count: {'met' if not growing else 'MISSED on ' + ', '.join(growing)}")


if __name__ == "__main__":
    main()
