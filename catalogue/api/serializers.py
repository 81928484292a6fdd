"""Shapes of the API's requests and answers. No business rules here: those live in catalogue.services."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalogue import selectors
from catalogue.models import AuditEvent, Membership, Organization, Service, ServiceVersion, Subscription
from crane.models import Target
from orchestrator.models import Deployment, Event, Step

SECRET_MASK = "********"  # noqa: S105 -- a mask shown in place of secrets, not a secret


class ScopedOrganizationField(serializers.SlugRelatedField):
    """An organization named by slug, chosen only among the caller's own (with a role that may write).

    Scoping the queryset keeps other organizations out of validation, the
    browsable API's forms and OPTIONS answers alike.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("slug_field", "slug")
        kwargs.setdefault("queryset", Organization.objects.none())
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Organization]:
        request = self.context.get("request")
        if request is None or not request.user.is_authenticated:
            return Organization.objects.none()
        if selectors.is_operator(request.user, roles=selectors.WRITE_ROLES):
            return Organization.objects.all()
        return Organization.objects.filter(id__in=selectors.organization_ids(request.user, roles=selectors.WRITE_ROLES))


@extend_schema_field(OpenApiTypes.INT)
class ScopedVersionField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self) -> QuerySet[ServiceVersion]:
        request = self.context.get("request")
        user = request.user if request is not None else None
        if user is None:
            return ServiceVersion.objects.none()
        return selectors.versions_visible_to(user)


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "slug", "name", "kind", "email", "website", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"slug": {"required": False}}


class PublisherSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["slug", "name", "website"]


class MembershipSerializer(serializers.ModelSerializer):
    organization = ScopedOrganizationField()
    # A username, looked up only after the caller is known to administer the organization: a choice
    # field over the users would list every account of the platform in forms and OPTIONS answers.
    user = serializers.CharField(source="user.username", max_length=150)
    role = serializers.ChoiceField(choices=Membership.Role.choices)

    class Meta:
        model = Membership
        fields = ["id", "organization", "user", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class MembershipRoleSerializer(serializers.Serializer):
    """PATCH may leave the role out (nothing changes); PUT must give it."""

    role = serializers.ChoiceField(choices=Membership.Role.choices)


class ServiceSerializer(serializers.ModelSerializer):
    publisher = ScopedOrganizationField()
    latest_version = serializers.CharField(read_only=True, allow_null=True, default=None)

    class Meta:
        model = Service
        fields = [
            "id",
            "slug",
            "name",
            "summary",
            "description",
            "category",
            "tags",
            "publisher",
            "state",
            "latest_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "state", "latest_version", "created_at", "updated_at"]
        extra_kwargs = {"slug": {"required": False}}


class ServiceUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = ["name", "summary", "description", "category", "tags"]


class ProblemSerializer(serializers.Serializer):
    severity = serializers.CharField()
    kind = serializers.CharField()
    message = serializers.CharField()
    file = serializers.CharField(allow_null=True)
    line = serializers.IntegerField(allow_null=True)
    node = serializers.CharField(allow_null=True)


class ServiceVersionSerializer(serializers.ModelSerializer):
    service: serializers.SlugRelatedField[Service] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    subscriptions_count = serializers.IntegerField(read_only=True)
    problems = serializers.SerializerMethodField()
    deployable = serializers.BooleanField(source="is_deployable", read_only=True)

    class Meta:
        model = ServiceVersion
        fields = [
            "id",
            "service",
            "version",
            "state",
            "changelog",
            "template_filename",
            "template_sha256",
            "template_size",
            "deployable",
            "problems",
            "inputs_schema",
            "review_reason",
            "subscriptions_count",
            "created_at",
            "submitted_at",
            "reviewed_at",
            "published_at",
        ]
        read_only_fields = fields

    def get_problems(self, version: ServiceVersion) -> list[dict[str, Any]]:
        problems: list[dict[str, Any]] = version.validation_report.get("problems", [])
        return problems


class VersionUploadSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=64)
    file = serializers.FileField(help_text="A TOSCA service template (YAML) or a CSAR (zip).")
    changelog = serializers.CharField(required=False, allow_blank=True, default="")


class TemplateFileSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A TOSCA service template (YAML) or a CSAR (zip).")


class ReportSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    deployable = serializers.BooleanField()
    problems = ProblemSerializer(many=True)
    inputs = serializers.DictField()


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=5000)


class ScopedTargetField(serializers.SlugRelatedField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("slug_field", "name")
        kwargs.setdefault("queryset", Target.objects.none())
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Target]:
        request = self.context.get("request")
        if request is None:
            return Target.objects.none()
        return selectors.targets_visible_to(request.user)


class SubscriptionSerializer(serializers.ModelSerializer):
    subscriber = ScopedOrganizationField()
    version = ScopedVersionField()
    service: serializers.SlugRelatedField[Service] = serializers.SlugRelatedField(
        source="version.service", slug_field="slug", read_only=True
    )
    inputs = serializers.DictField(required=False, default=dict)
    target = ScopedTargetField(
        required=False, write_only=True, help_text="The cloud to deploy to (GET /api/v1/targets/); default: local."
    )
    status = serializers.CharField(read_only=True, help_text="The deployment's state, which the subscription follows.")
    outputs = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        fields = [
            "id",
            "name",
            "subscriber",
            "service",
            "version",
            "inputs",
            "target",
            "state",
            "status",
            "deployment",
            "outputs",
            "created_at",
            "updated_at",
            "cancelled_at",
        ]
        read_only_fields = [
            "id",
            "service",
            "state",
            "status",
            "deployment",
            "created_at",
            "updated_at",
            "cancelled_at",
        ]

    def get_outputs(self, subscription: Subscription) -> dict[str, Any]:
        return dict(subscription.deployment.outputs) if subscription.deployment is not None else {}

    def to_representation(self, instance: Subscription) -> dict[str, Any]:
        data = super().to_representation(instance)
        schema = instance.version.inputs_schema or {}
        # Secret values are stored encrypted apart; the answer only says they are set.
        data["inputs"] = dict(instance.inputs)
        for name, spec in schema.items():
            if spec.get("secret") and instance.secret_inputs:
                data["inputs"][name] = SECRET_MASK
        return data


class AuditEventSerializer(serializers.ModelSerializer):
    organization: serializers.SlugRelatedField[Organization] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    actor = serializers.CharField(source="actor_name", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "organization",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "data",
            "ip_address",
        ]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    is_operator = serializers.BooleanField()
    memberships = serializers.ListField(child=serializers.DictField())


class TargetSerializer(serializers.ModelSerializer):
    """A cloud as subscribers see it; endpoints and TLS material never leave the platform."""

    class Meta:
        model = Target
        fields = ["name", "provider", "region", "mode", "state", "checked_at"]
        read_only_fields = fields


class StepSerializer(serializers.ModelSerializer):
    class Meta:
        model = Step
        fields = [
            "key",
            "kind",
            "node",
            "state",
            "summary",
            "requires",
            "attempts",
            "error",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class EventSerializer(serializers.ModelSerializer):
    # Deployment-wide events (created, running, failed...) belong to no step.
    step = serializers.CharField(source="step.key", default=None, allow_null=True, read_only=True)

    class Meta:
        model = Event
        fields = ["created_at", "level", "kind", "message", "step"]
        read_only_fields = fields


class DeploymentSerializer(serializers.ModelSerializer):
    target: serializers.SlugRelatedField[Target] = serializers.SlugRelatedField(slug_field="name", read_only=True)
    subscription: serializers.PrimaryKeyRelatedField[Subscription] = serializers.PrimaryKeyRelatedField(read_only=True)
    steps = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Deployment
        fields = [
            "id",
            "name",
            "target",
            "subscription",
            "state",
            "operation",
            "error",
            "outputs",
            "progress",
            "steps",
            "created_at",
            "updated_at",
            "finished_at",
        ]
        read_only_fields = fields

    def _steps(self, deployment: Deployment) -> list[Step]:
        return [s for s in deployment.steps.all() if s.generation == deployment.generation]

    def get_steps(self, deployment: Deployment) -> list[dict[str, Any]]:
        return list(StepSerializer(self._steps(deployment), many=True).data)

    def get_progress(self, deployment: Deployment) -> dict[str, int]:
        steps = self._steps(deployment)
        return {"done": sum(1 for s in steps if s.state == Step.State.DONE), "total": len(steps)}


class UpgradeSerializer(serializers.Serializer):
    version = ScopedVersionField(help_text="The published version to move to.")
    inputs = serializers.DictField(required=False, help_text="Values to change; the others are kept.")
