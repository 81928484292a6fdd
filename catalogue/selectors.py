"""Reads, always scoped to what the person may see.

Every API view and portal page starts from one of these querysets, so an
object of another organization is simply not found (404), never forbidden.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery

from catalogue.models import AuditEvent, Membership, Organization, Service, ServiceVersion, Subscription
from crane.models import Target
from monitoring.models import Alert, AlertRule, TargetHealth
from orchestrator.models import Deployment

AnyUser = User | AnonymousUser

PUBLIC_VERSION_STATES = (ServiceVersion.State.PUBLISHED, ServiceVersion.State.DEPRECATED)
WRITE_ROLES = (Membership.Role.ADMIN, Membership.Role.EDITOR)


def is_operator(user: AnyUser, *, roles: tuple[str, ...] | None = None) -> bool:
    """Whether the person operates the platform: any member of an operator organization reads everything;
    `roles` asks for one of those roles there, as an operator action does (a viewer reads, never acts)."""
    if not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    memberships = Membership.objects.filter(user=user, organization__kind=Organization.Kind.OPERATOR)
    if roles is not None:
        memberships = memberships.filter(role__in=roles)
    return memberships.exists()


def organization_ids(user: AnyUser, *, roles: tuple[str, ...] | None = None) -> list[int]:
    if not user.is_authenticated:
        return []
    memberships = Membership.objects.filter(user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=roles)
    return list(memberships.values_list("organization_id", flat=True))


def organizations_visible_to(user: AnyUser) -> QuerySet[Organization]:
    if is_operator(user):
        return Organization.objects.all()
    return Organization.objects.filter(id__in=organization_ids(user))


def memberships_visible_to(user: AnyUser) -> QuerySet[Membership]:
    qs = Membership.objects.select_related("user", "organization")
    if is_operator(user):
        return qs
    return qs.filter(organization_id__in=organization_ids(user))


def services_visible_to(user: AnyUser) -> QuerySet[Service]:
    """Published services for everyone; a publisher's own services in any state; all for operators."""
    qs = Service.objects.select_related("publisher")
    if is_operator(user):
        return qs
    return qs.filter(Q(state=Service.State.PUBLISHED) | Q(publisher_id__in=organization_ids(user)))


def versions_visible_to(user: AnyUser) -> QuerySet[ServiceVersion]:
    """Published and deprecated versions of published services; own versions in any state; all for operators."""
    qs = (
        ServiceVersion.objects.select_related("service", "service__publisher")
        .annotate(
            subscriptions_count=Count("subscriptions", filter=~Q(subscriptions__state=Subscription.State.CANCELLED))
        )
        .order_by("service", "-major", "-minor", "-patch", "-is_release", "-created_at")
    )
    if is_operator(user):
        return qs
    public = Q(state__in=PUBLIC_VERSION_STATES, service__state=Service.State.PUBLISHED)
    return qs.filter(public | Q(service__publisher_id__in=organization_ids(user)))


def subscriptions_visible_to(user: AnyUser) -> QuerySet[Subscription]:
    qs = Subscription.objects.select_related("subscriber", "version", "version__service", "deployment")
    if is_operator(user):
        return qs
    return qs.filter(subscriber_id__in=organization_ids(user))


def audit_events_visible_to(user: AnyUser) -> QuerySet[AuditEvent]:
    """Operators read the whole trail; an organization's administrators read their organization's."""
    qs = AuditEvent.objects.select_related("organization")
    if is_operator(user):
        return qs
    return qs.filter(organization_id__in=organization_ids(user, roles=(Membership.Role.ADMIN,)))


def services_search(services: QuerySet[Service], query: str) -> QuerySet[Service]:
    """Full-text search with ranking on PostgreSQL; a plain substring match on SQLite."""
    query = query.strip()
    if not query:
        return services
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

        vector = (
            SearchVector("name", weight="A", config="simple")
            + SearchVector("summary", "category", weight="B", config="simple")
            + SearchVector("tags", weight="B", config="simple")
            + SearchVector("description", weight="C", config="simple")
        )
        search = SearchQuery(query, search_type="websearch", config="simple")
        prefix = Q(name__icontains=query) | Q(summary__icontains=query)
        return (
            services.annotate(search=vector, rank=SearchRank(vector, search))
            .filter(Q(search=search) | prefix)
            .order_by(F("rank").desc(nulls_last=True), "name")
        )
    terms = query.split()
    for term in terms:
        services = services.filter(
            Q(name__icontains=term)
            | Q(summary__icontains=term)
            | Q(description__icontains=term)
            | Q(category__icontains=term)
            | Q(tags__icontains=term)
        )
    return services


def with_latest_version(services: QuerySet[Service]) -> QuerySet[Service]:
    """Annotates each service with its newest published version number (one subquery, no N+1)."""
    latest = (
        ServiceVersion.objects.filter(service=OuterRef("pk"), state=ServiceVersion.State.PUBLISHED)
        .order_by("-major", "-minor", "-patch", "-is_release", "-created_at")
        .values("version")[:1]
    )
    return services.annotate(latest_version=Subquery(latest))


def deployments_visible_to(user: AnyUser) -> QuerySet[Deployment]:
    """Deployments of the caller's organizations' subscriptions; all of them for operators."""
    qs = Deployment.objects.select_related("target", "subscription", "subscription__subscriber")
    if is_operator(user):
        return qs
    return qs.filter(subscription__subscriber_id__in=organization_ids(user))


def targets_visible_to(user: AnyUser) -> QuerySet[Target]:
    """Clouds a subscriber may deploy to: every registered target (they belong to the platform)."""
    if not user.is_authenticated:
        return Target.objects.none()
    return Target.objects.order_by("name")


def alerts_visible_to(user: AnyUser) -> QuerySet[Alert]:
    """Alerts of the deployments the caller sees."""
    return Alert.objects.filter(deployment__in=deployments_visible_to(user).values("pk"))


def alert_rules_visible_to(user: AnyUser) -> QuerySet[AlertRule]:
    """The rules of the deployments the caller sees (the platform's defaults are the operators' business)."""
    return AlertRule.objects.filter(deployment__in=deployments_visible_to(user).values("pk")).order_by(
        "deployment_id", "kind"
    )


def target_health_visible_to(user: AnyUser) -> QuerySet[TargetHealth]:
    """The clouds' health timeline: for operators, who run them."""
    if not is_operator(user):
        return TargetHealth.objects.none()
    return TargetHealth.objects.select_related("target")
