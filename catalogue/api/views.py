"""REST API v1: each view is a scoped queryset, a serializer, and a call to a service function."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.http import FileResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from catalogue import selectors, services
from catalogue.api import filters, serializers
from catalogue.api.monitoring import DeploymentMonitoringMixin
from catalogue.models import AuditEvent, Membership, Organization, Service, ServiceVersion, Subscription
from catalogue.services import Actor
from config.errors import InvalidState
from config.parsers import BoundedJSONParser
from config.schema import ERROR
from config.throttling import LoginAddressThrottle, LoginUsernameThrottle
from crane.models import Target
from orchestrator.models import Deployment


# A retired service cannot be changed (409); the answer is the whole service, as on GET.
@extend_schema_view(
    update=extend_schema(responses={200: serializers.ServiceSerializer, 409: ERROR}),
    partial_update=extend_schema(responses={200: serializers.ServiceSerializer, 409: ERROR}),
)
class ServiceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """The catalogue: anyone can list and search published services; publishers manage their own."""

    serializer_class = serializers.ServiceSerializer
    filterset_class = filters.ServiceFilterSet
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    ordering_fields = ["name", "created_at", "updated_at", "category"]
    lookup_field = "slug"

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action in ("list", "retrieve"):
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        if self.action in ("update", "partial_update"):
            return serializers.ServiceUpdateSerializer
        if self.action == "versions":
            return serializers.VersionUploadSerializer
        return serializers.ServiceSerializer

    def get_queryset(self) -> QuerySet[Service]:
        qs = selectors.with_latest_version(selectors.services_visible_to(self.request.user))
        if self.action == "list":
            qs = selectors.services_search(qs, self.request.query_params.get("q", ""))
        return qs

    @extend_schema(parameters=[OpenApiParameter("q", str, description="Full-text search words.")])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = services.service_create(actor=Actor.from_request(self.request), **data)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        service = self.get_object()
        form = serializers.ServiceUpdateSerializer(data=request.data, partial=kwargs.get("partial", False))
        form.is_valid(raise_exception=True)
        services.service_update(actor=Actor.from_request(request), service=service, **form.validated_data)
        service = self.get_queryset().get(pk=service.pk)
        return Response(serializers.ServiceSerializer(service, context=self.get_serializer_context()).data)

    @extend_schema(
        request={"multipart/form-data": serializers.VersionUploadSerializer},
        responses={201: serializers.ServiceVersionSerializer},
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def versions(self, request: Request, slug: str | None = None) -> Response:
        """Uploads a template or CSAR as a new draft version; an invalid template is refused with its problems."""
        service = self.get_object()
        form = serializers.VersionUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload: UploadedFile = form.validated_data["file"]
        version = services.version_upload(
            actor=Actor.from_request(request),
            service=service,
            version=form.validated_data["version"],
            filename=upload.name or "template.yaml",
            data=services.read_template_upload(upload),
            changelog=form.validated_data["changelog"],
        )
        version = selectors.versions_visible_to(request.user).get(pk=version.pk)
        return Response(serializers.ServiceVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class ServiceVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Versions of services, and the publishing workflow as actions."""

    serializer_class = serializers.ServiceVersionSerializer
    filterset_class = filters.ServiceVersionFilterSet
    permission_classes = [permissions.AllowAny]

    def get_queryset(self) -> QuerySet[ServiceVersion]:
        return selectors.versions_visible_to(self.request.user)

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action in ("list", "retrieve", "template"):
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]

    def _answer(self, version: ServiceVersion) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=version.pk)).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str | None = None) -> Response:
        return self._answer(services.version_submit(actor=Actor.from_request(request), version=self.get_object()))

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return self._answer(services.version_approve(actor=Actor.from_request(request), version=self.get_object()))

    @extend_schema(request=serializers.RejectSerializer)
    @action(detail=True, methods=["post"], serializer_class=serializers.RejectSerializer)
    def reject(self, request: Request, pk: str | None = None) -> Response:
        version = self.get_object()
        form = serializers.RejectSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        version = services.version_reject(
            actor=Actor.from_request(request), version=version, reason=form.validated_data["reason"]
        )
        return Response(serializers.ServiceVersionSerializer(self.get_queryset().get(pk=version.pk)).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def deprecate(self, request: Request, pk: str | None = None) -> Response:
        return self._answer(services.version_deprecate(actor=Actor.from_request(request), version=self.get_object()))

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def retire(self, request: Request, pk: str | None = None) -> Response:
        return self._answer(services.version_retire(actor=Actor.from_request(request), version=self.get_object()))

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def template(self, request: Request, pk: str | None = None) -> FileResponse:
        """Downloads the template or CSAR exactly as uploaded."""
        version = self.get_object()
        return FileResponse(version.template.open("rb"), as_attachment=True, filename=version.template_filename)


class ValidateView(APIView):
    """Validates a template or CSAR and answers its problems; nothing is stored."""

    parser_classes = [MultiPartParser, FormParser]
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request={"multipart/form-data": serializers.TemplateFileSerializer},
        responses={200: serializers.ReportSerializer},
    )
    def post(self, request: Request) -> Response:
        form = serializers.TemplateFileSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload: UploadedFile = form.validated_data["file"]
        report = services.template_validate(
            filename=upload.name or "template.yaml", data=services.read_template_upload(upload)
        )
        return Response(report.to_dict())


class OrganizationViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """The caller's organizations; operators see and create all."""

    serializer_class = serializers.OrganizationSerializer
    lookup_field = "slug"

    def get_queryset(self) -> QuerySet[Organization]:
        return selectors.organizations_visible_to(self.request.user)

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        data = serializer.validated_data
        serializer.instance = services.organization_create(
            actor=Actor.from_request(self.request),
            name=data["name"],
            kind=data["kind"],
            slug=data.get("slug", ""),
            email=data.get("email", ""),
        )


# The last administrator can be neither removed nor demoted (409); a role change answers the whole
# membership; a PATCH without a role changes nothing.
@extend_schema_view(
    update=extend_schema(responses={200: serializers.MembershipSerializer, 409: ERROR}),
    partial_update=extend_schema(responses={200: serializers.MembershipSerializer, 409: ERROR}),
    destroy=extend_schema(responses={204: None, 409: ERROR}),
)
class MembershipViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Members of the caller's organizations; an organization's administrators add, change and remove them."""

    serializer_class = serializers.MembershipSerializer
    filterset_fields = ["role"]

    def get_queryset(self) -> QuerySet[Membership]:
        return selectors.memberships_visible_to(self.request.user)

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        if self.action in ("update", "partial_update"):
            return serializers.MembershipRoleSerializer
        return serializers.MembershipSerializer

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        data = serializer.validated_data
        serializer.instance = services.membership_add(
            actor=Actor.from_request(self.request),
            organization=data["organization"],
            username=data["user"]["username"],
            role=data["role"],
        )

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        membership = self.get_object()
        partial = kwargs.get("partial", False)
        form = serializers.MembershipRoleSerializer(data=request.data, partial=partial)
        form.is_valid(raise_exception=True)
        if "role" not in form.validated_data:  # a PATCH without a role changes nothing
            return Response(serializers.MembershipSerializer(membership, context=self.get_serializer_context()).data)
        membership = services.membership_set(
            actor=Actor.from_request(request),
            organization=membership.organization,
            user=membership.user,
            role=form.validated_data["role"],
        )
        return Response(serializers.MembershipSerializer(membership, context=self.get_serializer_context()).data)

    def perform_destroy(self, instance: Membership) -> None:
        services.membership_remove(actor=Actor.from_request(self.request), membership=instance)


# Only a published version can be subscribed (409).
@extend_schema_view(create=extend_schema(responses={201: serializers.SubscriptionSerializer, 409: ERROR}))
class SubscriptionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """The caller's organizations' subscriptions."""

    serializer_class = serializers.SubscriptionSerializer
    filterset_class = filters.SubscriptionFilterSet

    def get_queryset(self) -> QuerySet[Subscription]:
        return selectors.subscriptions_visible_to(self.request.user)

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        data = serializer.validated_data
        serializer.instance = services.subscription_create(
            actor=Actor.from_request(self.request),
            subscriber=data["subscriber"],
            version=data["version"],
            name=data["name"],
            inputs=data.get("inputs", {}),
            target=data.get("target"),
        )

    @extend_schema(request=serializers.UpgradeSerializer, responses={202: serializers.SubscriptionSerializer})
    @action(detail=True, methods=["post"], serializer_class=serializers.UpgradeSerializer)
    def upgrade(self, request: Request, pk: str | None = None) -> Response:
        """Moves to another version of the service; poll the deployment to follow the rolling update."""
        subscription = self.get_object()
        form = serializers.UpgradeSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        subscription = services.subscription_upgrade(
            actor=Actor.from_request(request),
            subscription=subscription,
            version=form.validated_data["version"],
            inputs=form.validated_data.get("inputs"),
        )
        data = serializers.SubscriptionSerializer(
            self.get_queryset().get(pk=subscription.pk), context=self.get_serializer_context()
        ).data
        return Response(data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: serializers.SubscriptionSerializer})
    @action(detail=True, methods=["post"])
    def unsubscribe(self, request: Request, pk: str | None = None) -> Response:
        """Cancels the subscription; its instance is removed in the background (poll its deployment)."""
        subscription = services.subscription_cancel(actor=Actor.from_request(request), subscription=self.get_object())
        data = self.get_serializer(self.get_queryset().get(pk=subscription.pk)).data
        return Response(data, status=status.HTTP_202_ACCEPTED)


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail: all of it for operators, their organization's for its administrators."""

    serializer_class = serializers.AuditEventSerializer
    filterset_class = filters.AuditEventFilterSet

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return selectors.audit_events_visible_to(self.request.user)


class MeView(APIView):
    """Who the caller is and in which organizations, with which role."""

    @extend_schema(responses=serializers.MeSerializer)
    def get(self, request: Request) -> Response:
        memberships = selectors.memberships_visible_to(request.user).filter(user__username=request.user.get_username())
        return Response(
            {
                "username": request.user.get_username(),
                "is_operator": selectors.is_operator(request.user),
                "memberships": [
                    {"organization": m.organization.slug, "kind": m.organization.kind, "role": m.role}
                    for m in memberships
                ],
            }
        )


class TokenView(ObtainAuthToken):
    """Exchanges a username and password for the API token (`Authorization: Token <key>`).

    Throttled per address and per attempted username; failed attempts count towards the same lockout
    as the login page (django-axes), which answers 429 with Retry-After.
    """

    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]
    throttle_classes = [LoginAddressThrottle, LoginUsernameThrottle]

    def get_serializer_context(self) -> dict[str, Any]:
        # django-axes marks the HttpRequest it is given; its middleware reads the mark on the same object.
        return {**super().get_serializer_context(), "request": self.request._request}


class TargetViewSet(viewsets.ReadOnlyModelViewSet):
    """The clouds subscribers can deploy to, with their health."""

    serializer_class = serializers.TargetSerializer
    lookup_field = "name"

    def get_queryset(self) -> QuerySet[Target]:
        return selectors.targets_visible_to(self.request.user)


class DeploymentViewSet(DeploymentMonitoringMixin, viewsets.ReadOnlyModelViewSet):
    """Running instances with their steps and timeline; actions answer 202 with the deployment to poll."""

    serializer_class = serializers.DeploymentSerializer
    filterset_fields = ["state"]

    def get_queryset(self) -> QuerySet[Deployment]:
        return selectors.deployments_visible_to(self.request.user).prefetch_related("steps")

    def _accepted(self, deployment: Deployment) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=deployment.pk)).data, status=202)

    @extend_schema(request=None, responses={202: serializers.DeploymentSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        """Resumes a failed deployment from the step that failed."""
        return self._accepted(
            services.deployment_retry(actor=Actor.from_request(request), deployment=self.get_object())
        )

    @extend_schema(request=None, responses={202: serializers.DeploymentSerializer})
    @action(detail=True, methods=["post"])
    def deploy(self, request: Request, pk: str | None = None) -> Response:
        """Runs the whole plan again: repairs what drifted, or starts a failed deployment over."""
        return self._accepted(
            services.deployment_redeploy(actor=Actor.from_request(request), deployment=self.get_object())
        )

    @extend_schema(request=serializers.UpgradeSerializer, responses={202: serializers.DeploymentSerializer})
    @action(detail=True, methods=["post"], serializer_class=serializers.UpgradeSerializer)
    def upgrade(self, request: Request, pk: str | None = None) -> Response:
        """Moves the subscription's instance to another version of its service (as the subscription's upgrade)."""
        deployment = self.get_object()
        subscription = getattr(deployment, "subscription", None)
        if subscription is None:
            raise InvalidState(
                f"Deployment {deployment.pk} was made from a template, not a subscription: there is no other "
                "version to move to. Deploy the new template instead."
            )
        form = serializers.UpgradeSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        services.subscription_upgrade(
            actor=Actor.from_request(request),
            subscription=subscription,
            version=form.validated_data["version"],
            inputs=form.validated_data.get("inputs"),
        )
        return Response(
            serializers.DeploymentSerializer(self.get_queryset().get(pk=deployment.pk)).data,
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(request=None, responses={202: serializers.DeploymentSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Stops a deployment in progress: running steps finish, waiting steps are dropped."""
        return self._accepted(
            services.deployment_cancel(actor=Actor.from_request(request), deployment=self.get_object())
        )

    @extend_schema(request=None, responses={202: serializers.DeploymentSerializer})
    @action(detail=True, methods=["post"])
    def undeploy(self, request: Request, pk: str | None = None) -> Response:
        """Removes everything the deployment created (for a subscription: unsubscribes)."""
        return self._accepted(
            services.deployment_remove(actor=Actor.from_request(request), deployment=self.get_object())
        )

    # The viewset's state filter is for the list of deployments, not for their events.
    @extend_schema(
        responses=serializers.EventSerializer(many=True), parameters=[OpenApiParameter("state", exclude=True)]
    )
    @action(detail=True, methods=["get"])
    def events(self, request: Request, pk: str | None = None) -> Response:
        """The deployment's timeline, oldest first."""
        deployment = self.get_object()
        events = deployment.events.select_related("step").order_by("created_at", "id")
        page = self.paginate_queryset(events)
        return self.get_paginated_response(serializers.EventSerializer(page, many=True).data)
