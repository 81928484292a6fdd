"""What monitoring keeps in the platform's database.

Metric samples and log lines live here only with the database store (the embedded default);
with Elasticsearch they go to its indices instead. Everything else (health, alerts, cursors,
keys) is small, transactional state and always lives here.

Samples and lines name their deployment by id, not by foreign key: they are written in bulk
at high rates and outlive the deployment until retention removes them.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from crane.models import Target
from orchestrator.models import Deployment


class MetricSample(models.Model):
    """One reading of one container: the Docker stats API plus the task state and health."""

    time = models.DateTimeField()
    deployment_id = models.CharField(max_length=24)
    node = models.CharField(max_length=64)
    container = models.CharField(max_length=128, blank=True)
    cpu_percent = models.FloatField(null=True, help_text=_("Of one CPU: 150 is one and a half CPUs."))
    memory_bytes = models.BigIntegerField(null=True)
    memory_limit = models.BigIntegerField(null=True)
    network_rx_bytes = models.BigIntegerField(null=True)
    network_tx_bytes = models.BigIntegerField(null=True)
    block_read_bytes = models.BigIntegerField(null=True)
    block_write_bytes = models.BigIntegerField(null=True)
    restarts = models.IntegerField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["deployment_id", "time"], name="metric_deployment_time"),
            models.Index(fields=["time"], name="metric_time"),
        ]

    def __str__(self) -> str:
        return f"{self.deployment_id}/{self.node} at {self.time:%Y-%m-%d %H:%M:%S}"


class LogLine(models.Model):
    class Source(models.TextChoices):
        DOCKER = "docker", _("Container output")
        FLUENTD = "fluentd", _("Fluentd forward")
        PLATFORM = "platform", _("Agora")

    time = models.DateTimeField()
    deployment_id = models.CharField(max_length=24, blank=True, help_text=_("Blank for the platform's own events."))
    node = models.CharField(max_length=64, blank=True)
    container = models.CharField(max_length=128, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.DOCKER)
    stream = models.CharField(max_length=16, blank=True, help_text=_("stdout, stderr, or the Fluentd tag."))
    level = models.CharField(max_length=8, blank=True)
    message = models.TextField()

    class Meta:
        indexes = [
            models.Index(fields=["deployment_id", "time"], name="log_deployment_time"),
            models.Index(fields=["time"], name="log_time"),
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.deployment_id}/{self.node}: {self.message[:80]}"


class LogCursor(models.Model):
    """Where the collector stopped reading a container's log, so a restarted collector
    neither loses nor repeats a line."""

    container_id = models.CharField(primary_key=True, max_length=128)
    deployment_id = models.CharField(max_length=24)
    node = models.CharField(max_length=64)
    last_time = models.DateTimeField(null=True)
    lines_at_last_time = models.PositiveIntegerField(
        default=0, help_text=_("Lines already stored that carry last_time (several lines can share a timestamp).")
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.container_id} up to {self.last_time}"


class DeploymentHealth(models.Model):
    class Health(models.TextChoices):
        HEALTHY = "healthy", _("Healthy")
        STARTING = "starting", _("Starting")
        DEGRADED = "degraded", _("Degraded")
        UNHEALTHY = "unhealthy", _("Unhealthy")
        UNKNOWN = "unknown", _("Unknown")

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, primary_key=True, related_name="health")
    health = models.CharField(max_length=10, choices=Health.choices, default=Health.UNKNOWN)
    nodes = models.JSONField(
        default=dict, blank=True, help_text=_("Per node: tasks running and desired, health, restarts.")
    )
    message = models.TextField(blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.deployment_id}: {self.health}"


class TargetHealth(models.Model):
    """One check of a cloud: the dependability timeline."""

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="health_checks")
    time = models.DateTimeField(db_index=True)
    reachable = models.BooleanField()
    docker_version = models.CharField(max_length=50, blank=True)
    nodes_ready = models.PositiveIntegerField(default=0)
    nodes_down = models.PositiveIntegerField(default=0)
    cpus_total = models.FloatField(null=True)
    cpus_free = models.FloatField(null=True, help_text=_("CPUs not reserved or limited by Agora's services."))
    memory_total = models.BigIntegerField(null=True)
    memory_free = models.BigIntegerField(null=True)
    containers_running = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-time"]
        indexes = [models.Index(fields=["target", "time"], name="target_health_time")]

    def __str__(self) -> str:
        return f"{self.target_id} at {self.time:%Y-%m-%d %H:%M:%S}: {'up' if self.reachable else 'unreachable'}"


class AlertRule(models.Model):
    class Kind(models.TextChoices):
        RESTARTING = "restarting", _("Container restarting")
        UNHEALTHY = "unhealthy", _("Health check failing")
        CPU = "cpu", _("CPU above threshold")
        MEMORY = "memory", _("Memory above threshold")
        UNREACHABLE = "unreachable", _("Cloud unreachable")

    deployment = models.ForeignKey(
        Deployment,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alert_rules",
        help_text=_("Blank: a default rule for every deployment that has none of this kind."),
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    threshold = models.FloatField(
        null=True, blank=True, help_text=_("Percent of one CPU, percent of the memory limit, or restarts.")
    )
    duration_seconds = models.PositiveIntegerField(default=60, help_text=_("How long the condition must hold."))
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["deployment", "kind"], name="alert_rule_one_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.deployment_id or 'every deployment'}"


class Alert(models.Model):
    class State(models.TextChoices):
        FIRING = "firing", _("Firing")
        RESOLVED = "resolved", _("Resolved")

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=12, choices=AlertRule.Kind.choices)
    node = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.FIRING, db_index=True)
    message = models.TextField()
    raised_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "kind", "node"],
                condition=models.Q(state="firing"),
                name="alert_one_firing_per_kind_and_node",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.deployment_id}/{self.node or '*'}: {self.state}"


class CollectorHeartbeat(models.Model):
    """Each collector's last round, for /metrics (collector lag) and the operator's pages."""

    name = models.CharField(primary_key=True, max_length=100)
    target = models.ForeignKey(Target, on_delete=models.CASCADE, null=True, blank=True)
    last_round_at = models.DateTimeField()
    round_seconds = models.FloatField(default=0.0)
    containers = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.name


class ForwardKey(models.Model):
    """A shared key for the Fluentd forward handshake. It belongs to the owner (an organization,
    by its slug, as `Deployment.owner`); a client proves it with the key and names the deployment
    it ships for as its username, which must be one of the owner's deployments."""

    owner = models.CharField(max_length=64, unique=True)
    shared_key_encrypted = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"forward key of {self.owner}"


class ForwardChunk(models.Model):
    """Chunk ids already stored, so a chunk resent after a lost ack is not stored twice."""

    chunk = models.CharField(primary_key=True, max_length=64)
    received_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.chunk
