from __future__ import annotations

import datetime as dt

import django_filters
from django.db.models import QuerySet

from catalogue.models import AuditEvent, Service, ServiceVersion, Subscription


class ServiceFilterSet(django_filters.FilterSet):
    category = django_filters.CharFilter(field_name="category", lookup_expr="iexact")
    tag = django_filters.CharFilter(method="filter_tag", label="Tag")
    publisher = django_filters.CharFilter(field_name="publisher__slug", label="Publisher (slug)")
    state = django_filters.ChoiceFilter(choices=Service.State.choices)

    class Meta:
        model = Service
        fields = ["category", "tag", "publisher", "state"]

    def filter_tag(self, queryset: QuerySet[Service], name: str, value: str) -> QuerySet[Service]:
        # Tags are stored lower-cased as a JSON list; matching the quoted word works on PostgreSQL and SQLite.
        return queryset.filter(tags__icontains=f'"{value.strip().lower()}"')


class ServiceVersionFilterSet(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__slug", label="Service (slug)")
    state = django_filters.ChoiceFilter(choices=ServiceVersion.State.choices)

    class Meta:
        model = ServiceVersion
        fields = ["service", "state"]


class SubscriptionFilterSet(django_filters.FilterSet):
    subscriber = django_filters.CharFilter(field_name="subscriber__slug", label="Subscriber (slug)")
    service = django_filters.CharFilter(field_name="version__service__slug", label="Service (slug)")
    state = django_filters.ChoiceFilter(choices=Subscription.State.choices)

    class Meta:
        model = Subscription
        fields = ["subscriber", "service", "state"]


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """Compares in UTC: ISO 8601 admits offsets up to 23:59, PostgreSQL refuses those above 15:59."""

    def filter(self, qs: QuerySet[AuditEvent], value: dt.datetime | None) -> QuerySet[AuditEvent]:
        return super().filter(qs, value.astimezone(dt.UTC) if value is not None else value)


class AuditEventFilterSet(django_filters.FilterSet):
    organization = django_filters.CharFilter(field_name="organization__slug", label="Organization (slug)")
    action = django_filters.CharFilter(field_name="action")
    object_type = django_filters.CharFilter(field_name="object_type")
    object_id = django_filters.CharFilter(field_name="object_id")
    since = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["organization", "action", "object_type", "object_id", "since", "until"]
