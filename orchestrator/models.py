"""The orchestrator's truth about work: deployments, their steps and a timeline for people.

Redis only carries jobs; whether a step is done, running (and under whose lease) or
waiting is in these rows, so a killed worker, a restarted Redis or a restarted
Docker daemon never loses a deployment.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _

from crane.models import Target

_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_deployment_id() -> str:
    """Short, lower case and DNS-safe: it names Docker objects (agora-<id>-<node>)."""
    return "d" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(9))


class Deployment(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        DEPLOYING = "deploying", _("Deploying")
        RUNNING = "running", _("Running")
        FAILED = "failed", _("Failed")
        UPDATING = "updating", _("Updating")
        UNDEPLOYING = "undeploying", _("Undeploying")
        REMOVED = "removed", _("Removed")

    # States in which steps are being worked on.
    BUSY_STATES = frozenset({State.PENDING, State.DEPLOYING, State.UPDATING, State.UNDEPLOYING})
    CANCELLABLE_STATES = frozenset({State.PENDING, State.DEPLOYING, State.UPDATING})

    id = models.CharField(primary_key=True, max_length=24, default=new_deployment_id, editable=False)
    name = models.CharField(max_length=100, blank=True)
    owner = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text=_("The tenant (organization slug) the deployment belongs to; blank for the operator's own."),
    )
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="deployments")
    template = models.BinaryField(help_text=_("The template or CSAR exactly as deployed."))
    template_filename = models.CharField(max_length=255)
    template_sha256 = models.CharField(max_length=64)
    inputs = models.JSONField(default=dict, blank=True, help_text=_("Input values, secrets excluded."))
    secret_inputs = models.TextField(blank=True, help_text=_("Secret input values, encrypted."))
    plan = models.JSONField(default=dict, blank=True)
    previous = models.JSONField(
        default=dict, blank=True, help_text=_("Template, inputs and plan before an upgrade, to roll back to.")
    )
    generation = models.PositiveIntegerField(
        default=0, help_text=_("Counts the operations: deploy, upgrade, undeploy.")
    )
    operation = models.CharField(max_length=16, default="deploy")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    outputs = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        # Lists (operators' deployments page, the API) are newest first; at tens of thousands of rows
        # the index saves sorting them all for each page.
        indexes = [models.Index(fields=["-created_at"], name="deployment_newest_first")]

    def __str__(self) -> str:
        return f"{self.id} ({self.name or self.template_filename})"


class Step(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    TERMINAL_STATES = frozenset({State.DONE, State.FAILED, State.CANCELLED})

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="steps")
    generation = models.PositiveIntegerField()
    position = models.PositiveIntegerField(help_text=_("Order in the plan, for display."))
    key = models.CharField(max_length=100)
    kind = models.CharField(max_length=16)
    node = models.CharField(max_length=64, blank=True)
    requires = models.JSONField(default=list)
    params = models.JSONField(default=dict)
    summary = models.CharField(max_length=300)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True, help_text=_("Retry no sooner than this."))
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["deployment", "generation", "position"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "generation", "key"], name="step_unique_key_per_generation")
        ]
        indexes = [models.Index(fields=["state", "lease_expires_at"])]

    def __str__(self) -> str:
        return f"{self.deployment_id}/{self.key} ({self.state})"


class Event(models.Model):
    """A line of the timeline people read: what happened to a deployment, in plain words."""

    class Level(models.TextChoices):
        INFO = "info", _("Information")
        WARNING = "warning", _("Warning")
        ERROR = "error", _("Error")

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")
    step = models.ForeignKey(Step, on_delete=models.SET_NULL, null=True, blank=True, related_name="events")
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    kind = models.CharField(max_length=32)  # step.started, step.done, step.failed, step.retry, deployment.running, ...
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.created_at:%H:%M:%S} {self.kind}: {self.message}"
