"""The portal's reads, built on catalogue.selectors so every page sees what the API sees.

Each returns a queryset or values read in a fixed number of queries, whatever the number of rows:
pages show a page of results and never touch a relation row by row.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from catalogue.api.filters import ServiceFilterSet
from catalogue.models import Organization, Service, ServiceVersion, Subscription
from catalogue.selectors import AnyUser, services_search, services_visible_to, with_latest_version


def _subscribers_of_service() -> Coalesce:
    """How many organizations hold a live subscription to the service (any version)."""
    counted = (
        Subscription.objects.filter(version__service=OuterRef("pk"))
        .exclude(state=Subscription.State.CANCELLED)
        .order_by()
        .values("version__service")
        .annotate(n=Count("subscriber", distinct=True))
        .values("n")[:1]
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def catalogue_services(
    *, user: AnyUser, query: str = "", category: str = "", tag: str = "", publisher: str = ""
) -> QuerySet[Service]:
    """Published services matching the search and filters (the API's own filters), best match first."""
    services = services_visible_to(user).filter(state=Service.State.PUBLISHED)
    services = ServiceFilterSet(data={"category": category, "tag": tag, "publisher": publisher}, queryset=services).qs
    services = services_search(services, query)
    return with_latest_version(services).annotate(subscribers=_subscribers_of_service())


@dataclass(frozen=True)
class Facets:
    categories: list[str]
    tags: list[str]
    publishers: list[tuple[str, str]]  # (slug, name)


def catalogue_facets() -> Facets:
    """The values the catalogue's filters offer: those of published services only."""
    published = Service.objects.filter(state=Service.State.PUBLISHED).order_by()
    categories = sorted(set(published.exclude(category="").values_list("category", flat=True)))
    tags = sorted({tag for tags in published.values_list("tags", flat=True) for tag in (tags or [])})
    publishers = list(
        Organization.objects.filter(Exists(published.filter(publisher=OuterRef("pk"))))
        .order_by("name")
        .values_list("slug", "name")
    )
    return Facets(categories=categories, tags=tags, publishers=publishers)


def service_subscriber_count(service: Service) -> int:
    return (
        Subscription.objects.filter(version__service=service)
        .exclude(state=Subscription.State.CANCELLED)
        .values("subscriber")
        .distinct()
        .count()
    )


def newer_version_exists() -> Exists:
    """For a subscription queryset: is a published version of its service newer than the one it runs?"""
    newer = (
        Q(major__gt=OuterRef("version__major"))
        | Q(major=OuterRef("version__major"), minor__gt=OuterRef("version__minor"))
        | Q(major=OuterRef("version__major"), minor=OuterRef("version__minor"), patch__gt=OuterRef("version__patch"))
        | Q(
            major=OuterRef("version__major"),
            minor=OuterRef("version__minor"),
            patch=OuterRef("version__patch"),
            is_release__gt=OuterRef("version__is_release"),
        )
    )
    return Exists(
        ServiceVersion.objects.filter(
            service=OuterRef("version__service"), state=ServiceVersion.State.PUBLISHED
        ).filter(newer)
    )
