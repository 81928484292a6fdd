"""Catalogue data: who (organizations, members), what (services, versions), who uses what.

Models hold data and small derived facts; every state change goes through
catalogue.services, which also writes the AuditEvent.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from orchestrator.models import Deployment

SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


class Organization(models.Model):
    class Kind(models.TextChoices):
        PUBLIC_ADMINISTRATION = "public_administration", _("Public administration")
        PUBLISHER = "publisher", _("Publisher")
        OPERATOR = "operator", _("Operator")

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    email = models.EmailField(blank=True, help_text=_("Where alerts and notices are sent."))
    website = models.URLField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", _("Administrator")  # manages members, and all an editor does
        EDITOR = "editor", _("Editor")  # publishes services or subscribes to them
        VIEWER = "viewer", _("Viewer")  # reads only

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization__name", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_user_org")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class Service(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")  # no version published yet
        PUBLISHED = "published", _("Published")  # at least one version can be subscribed
        RETIRED = "retired", _("Retired")  # withdrawn from the catalogue

    publisher = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="services")
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    summary = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True, help_text=_("Markdown."))
    category = models.CharField(max_length=100, blank=True, db_index=True)
    tags = models.JSONField(default=list, blank=True)
    logo = models.FileField(upload_to="logos/", blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ServiceVersion(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted for review")
        PUBLISHED = "published", _("Published")
        REJECTED = "rejected", _("Rejected")
        DEPRECATED = "deprecated", _("Deprecated")  # runs on, no new subscriptions
        RETIRED = "retired", _("Retired")

    # States in which the template and its metadata can no longer change.
    FROZEN_STATES = frozenset({State.SUBMITTED, State.PUBLISHED, State.DEPRECATED, State.RETIRED, State.REJECTED})
    SUBSCRIBABLE_STATES = frozenset({State.PUBLISHED})

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=64, help_text=_("Semantic version, such as 1.4.0."))
    # Numeric parts of the version, for ordering; a pre-release sorts before its release.
    major = models.PositiveIntegerField(default=0)
    minor = models.PositiveIntegerField(default=0)
    patch = models.PositiveIntegerField(default=0)
    is_release = models.BooleanField(default=True)
    template = models.FileField(upload_to="templates/")
    template_filename = models.CharField(max_length=255)
    template_sha256 = models.CharField(max_length=64)
    template_size = models.PositiveBigIntegerField()
    validation_report = models.JSONField(default=dict)
    inputs_schema = models.JSONField(default=dict)
    changelog = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT, db_index=True)
    review_reason = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["service", "-major", "-minor", "-patch", "-is_release", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["service", "version"], name="version_unique_per_service"),
        ]

    def __str__(self) -> str:
        return f"{self.service.name} {self.version}"

    @property
    def is_deployable(self) -> bool:
        return bool(self.validation_report.get("deployable"))


class Subscription(models.Model):
    """An organization's use of a service version: the contract. Its running instance is the deployment."""

    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        CANCELLED = "cancelled", _("Cancelled")

    subscriber = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="subscriptions")
    version = models.ForeignKey(ServiceVersion, on_delete=models.PROTECT, related_name="subscriptions")
    name = models.CharField(max_length=100, help_text=_("A name for this instance, unique in the organization."))
    inputs = models.JSONField(default=dict, blank=True, help_text=_("Input values, secrets excluded."))
    secret_inputs = models.TextField(blank=True, help_text=_("Secret input values, encrypted."))
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE, db_index=True)
    deployment = models.OneToOneField(
        Deployment, on_delete=models.SET_NULL, null=True, blank=True, related_name="subscription"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "name"],
                condition=~Q(state="cancelled"),
                name="subscription_unique_live_name",
            )
        ]

    def __str__(self) -> str:
        return f"{self.subscriber} → {self.version} ({self.name})"

    @property
    def status(self) -> str:
        """What the subscriber sees: the deployment's state, which the subscription follows."""
        return self.deployment.state if self.deployment is not None else "pending"


class AuditEvent(models.Model):
    """Who did what to which object, when and from where. Written only, never edited."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    actor_name = models.CharField(max_length=150, blank=True, help_text=_("Kept when the user is deleted."))
    organization = models.ForeignKey(
        Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_events"
    )
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300)
    data = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name or 'system'} {self.action} {self.object_repr}"
