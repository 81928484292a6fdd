"""The API of monitoring: a deployment's health, metrics, logs and alerts; alert rules; the clouds' health.

Everything starts from the catalogue's scoped querysets, so another organization's deployment is a 404.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from catalogue import selectors, services
from config.schema import ERROR
from crane.models import Target
from monitoring import reading
from monitoring.models import Alert, AlertRule, TargetHealth
from monitoring.store import Line, LogQuery
from monitoring.store.base import LEVELS, MAX_LIMIT
from orchestrator.models import Deployment


class MetricsQuerySerializer(serializers.Serializer):
    range = serializers.ChoiceField(choices=list(reading.RANGES), required=False, help_text="A window ending now.")
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    bucket = serializers.IntegerField(required=False, min_value=1, help_text="Seconds per point; chosen if omitted.")
    node = serializers.CharField(required=False, max_length=64, help_text="One node; all of them if omitted.")


class LogsQuerySerializer(serializers.Serializer):
    deployment = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=24,
        help_text="Operators' search: one deployment, or blank for "
        "the platform's own events; every deployment if omitted.",
    )
    search = serializers.CharField(required=False, max_length=200, help_text="Words the line must contain.")
    level = serializers.ChoiceField(choices=list(LEVELS), required=False, help_text="This level and above.")
    node = serializers.CharField(required=False, max_length=64)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=100)
    before = serializers.CharField(required=False, max_length=500, help_text="The `next` cursor of the last page.")

    def query(self, deployment_id: str | None) -> LogQuery:
        data = self.validated_data
        return LogQuery(
            deployment_id=deployment_id,
            text=data.get("search", ""),
            level=data.get("level", ""),
            node=data.get("node", ""),
            since=data.get("since"),
            until=data.get("until"),
            limit=data["limit"],
            before=data.get("before"),
        )


def _line(line: Line) -> dict[str, Any]:
    return {
        "time": line.time,
        "deployment": line.deployment_id,
        "node": line.node,
        "container": line.container,
        "source": line.source,
        "stream": line.stream,
        "level": line.level,
        "message": line.message,
    }


class AlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = ["id", "deployment", "kind", "node", "state", "message", "raised_at", "resolved_at"]
        read_only_fields = fields


class AlertRuleSerializer(serializers.ModelSerializer):
    deployment = serializers.PrimaryKeyRelatedField(queryset=Deployment.objects.none())

    class Meta:
        model = AlertRule
        fields = ["id", "deployment", "kind", "threshold", "duration_seconds", "enabled"]
        read_only_fields = ["id"]
        validators: list[Any] = []  # one rule per kind is kept by alert_rule_set, which replaces the old one

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:  # naming a deployment the caller does not see is "does not exist"
            self.fields["deployment"].queryset = selectors.deployments_visible_to(request.user)  # type: ignore[attr-defined]


class TargetHealthSerializer(serializers.ModelSerializer):
    target: serializers.SlugRelatedField[Target] = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = TargetHealth
        exclude = ["id"]
        read_only_fields = ["target"]


class DeploymentMonitoringMixin:
    """The read side of monitoring as sub-resources of a deployment; mixed into DeploymentViewSet."""

    get_object: Any
    paginate_queryset: Any
    get_paginated_response: Any

    @extend_schema(responses={200: dict})
    @action(detail=True, methods=["get"])
    def health(self, request: Request, pk: str | None = None) -> Response:
        """The collector's verdict: healthy, starting, degraded, unhealthy or unknown, per node too."""
        deployment = self.get_object()
        return Response(reading.health(deployment.pk))

    @extend_schema(parameters=[MetricsQuerySerializer], responses={200: dict})
    @action(detail=True, methods=["get"])
    def metrics(self, request: Request, pk: str | None = None) -> Response:
        """CPU, memory, network and block I/O over a window (average and maximum per bucket), and the latest."""
        deployment = self.get_object()
        form = MetricsQuerySerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        since, until, bucket = reading.window(
            range_name=data.get("range"),
            since=data.get("since"),
            until=data.get("until"),
            bucket_seconds=data.get("bucket"),
        )
        return Response(reading.metrics(deployment.pk, node=data.get("node"), since=since, until=until, bucket=bucket))

    @extend_schema(parameters=[LogsQuerySerializer], responses={200: dict})
    @action(detail=True, methods=["get"])
    def logs(self, request: Request, pk: str | None = None) -> Response:
        """The deployment's log lines, newest first; `next` is the cursor of the older page."""
        deployment = self.get_object()
        form = LogsQuerySerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        page = reading.logs(form.query(deployment.pk))
        return Response({"results": [_line(line) for line in page.lines], "next": page.next_before})

    @extend_schema(
        responses=AlertSerializer(many=True),
        parameters=[
            OpenApiParameter("state", exclude=True),  # the deployments' filter, not the alerts'
            OpenApiParameter("firing", str, description="true or 1: only the alerts still firing; otherwise all."),
        ],
    )
    @action(detail=True, methods=["get"])
    def alerts(self, request: Request, pk: str | None = None) -> Response:
        """The deployment's alerts, newest first; `?firing=true` for the open ones only."""
        deployment = self.get_object()
        alerts = Alert.objects.filter(deployment=deployment)
        if request.query_params.get("firing") in ("true", "1"):
            alerts = alerts.filter(state=Alert.State.FIRING)
        page = self.paginate_queryset(alerts.order_by("-raised_at", "-id"))
        return self.get_paginated_response(AlertSerializer(page, many=True).data)


class _ByDeployment(django_filters.FilterSet):
    # The id as text, never a choice among all deployments: another organization's deployment and one
    # that does not exist must answer alike (an empty page), or the filter tells which ids exist.
    deployment = django_filters.CharFilter(field_name="deployment_id", label="Deployment (id)")


class AlertFilterSet(_ByDeployment):
    class Meta:
        model = Alert
        fields = ["state", "kind", "deployment"]


class AlertRuleFilterSet(_ByDeployment):
    class Meta:
        model = AlertRule
        fields = ["deployment", "kind"]


class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    """Alerts of every deployment the caller sees."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilterSet

    def get_queryset(self) -> QuerySet[Alert]:
        return selectors.alerts_visible_to(self.request.user).order_by("-raised_at", "-id")


class AlertRuleViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """A deployment's own alert rules; POSTing a kind the deployment already has replaces its settings."""

    serializer_class = AlertRuleSerializer
    filterset_class = AlertRuleFilterSet

    def get_queryset(self) -> QuerySet[AlertRule]:
        return selectors.alert_rules_visible_to(self.request.user)

    def perform_create(self, serializer: serializers.BaseSerializer[AlertRule]) -> None:
        data = serializer.validated_data
        serializer.instance = services.alert_rule_set(
            actor=services.Actor.from_request(self.request),
            deployment=data["deployment"],
            kind=data["kind"],
            threshold=data.get("threshold"),
            duration_seconds=data.get("duration_seconds"),
            enabled=data.get("enabled", True),
        )


class TargetHealthViewSet(viewsets.ReadOnlyModelViewSet):
    """The clouds' health timeline (operators): reachable, Docker version, swarm nodes, free capacity."""

    serializer_class = TargetHealthSerializer
    filterset_fields = ["target__name", "reachable"]

    def get_queryset(self) -> QuerySet[TargetHealth]:
        return selectors.target_health_visible_to(self.request.user).order_by("-time", "-id")


class PlatformLogsView(viewsets.ViewSet):
    """Log search across every deployment and the platform's own events (operators)."""

    @extend_schema(parameters=[LogsQuerySerializer], responses={200: dict, 404: ERROR})  # 404: not an operator
    def list(self, request: Request) -> Response:
        if not selectors.is_operator(request.user):
            raise NotFound()
        form = LogsQuerySerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        page = reading.logs(form.query(form.validated_data.get("deployment")))
        return Response({"results": [_line(line) for line in page.lines], "next": page.next_before})
