"""Targets (the Docker endpoints Agora deploys to) and the ports published on them.

Data only: registering, checking and talking to a target are functions in
crane/targets.py, allocating ports in crane/services.py.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q


class Target(models.Model):
    class Mode(models.TextChoices):
        SWARM = "swarm", "Docker Swarm"
        ENGINE = "engine", "Docker Engine"

    class State(models.TextChoices):
        UNKNOWN = "unknown", "unknown"
        REACHABLE = "reachable", "reachable"
        DEGRADED = "degraded", "degraded"
        UNREACHABLE = "unreachable", "unreachable"

    name = models.SlugField(max_length=50, unique=True)
    provider = models.CharField(max_length=100, blank=True, help_text="OpenStack, Azure, AWS, on-premises, ...")
    region = models.CharField(max_length=100, blank=True)
    public_host = models.CharField(max_length=253, help_text="Host name of the service URLs on this target.")
    endpoint = models.CharField(
        max_length=500, help_text="unix:///var/run/docker.sock, tcp://host:2376 (with TLS) or ssh://user@host"
    )
    tls_ca_certificate = models.TextField(blank=True, help_text="PEM; verifies the daemon's certificate.")
    tls_client_certificate = models.TextField(blank=True, help_text="PEM")
    # Fernet token of the PEM key (config.crypto); never shown, set through crane.services.target_set_tls_key.
    tls_client_key_encrypted = models.TextField(blank=True, editable=False)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.ENGINE)
    port_range_start = models.PositiveIntegerField(default=30000)
    port_range_end = models.PositiveIntegerField(default=30999)
    max_cpus = models.FloatField(null=True, blank=True, help_text="CPUs all Agora services together may use.")
    max_memory = models.PositiveBigIntegerField(null=True, blank=True, help_text="Bytes of memory, all together.")
    max_services = models.PositiveIntegerField(null=True, blank=True)
    default_cpus = models.FloatField(null=True, blank=True, help_text="CPU limit of a node that sets none.")
    default_memory = models.PositiveBigIntegerField(null=True, blank=True, help_text="Memory limit in bytes.")
    labels = models.JSONField(default=dict, blank=True)

    state = models.CharField(max_length=12, choices=State.choices, default=State.UNKNOWN)
    checked_at = models.DateTimeField(null=True, blank=True)
    docker_version = models.CharField(max_length=50, blank=True)
    api_version = models.CharField(max_length=10, blank=True)
    swarm_managers = models.PositiveIntegerField(default=0)
    swarm_workers = models.PositiveIntegerField(default=0)
    swarm_nodes_down = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(port_range_start__gte=1024, port_range_end__lte=65535)
                & Q(port_range_start__lte=F("port_range_end")),
                name="crane_target_port_range_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_tls_key(self) -> bool:
        return bool(self.tls_client_key_encrypted)


class PublishedPort(models.Model):
    """One host port of a target, held by one port of one node of one deployment."""

    class Protocol(models.TextChoices):
        TCP = "tcp", "TCP"
        UDP = "udp", "UDP"

    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="published_ports")
    port = models.PositiveIntegerField()
    deployment = models.CharField(max_length=64)
    node = models.CharField(max_length=64)
    target_port = models.PositiveIntegerField()
    protocol = models.CharField(max_length=3, choices=Protocol.choices, default=Protocol.TCP)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["target", "port"]
        constraints = [
            models.UniqueConstraint(fields=["target", "port"], name="crane_port_once_per_target"),
            models.UniqueConstraint(
                fields=["target", "deployment", "node", "target_port", "protocol"],
                name="crane_port_once_per_node_port",
            ),
        ]
        indexes = [models.Index(fields=["target", "deployment"])]

    def __str__(self) -> str:
        return f"{self.target_id}:{self.port} -> {self.deployment}/{self.node}:{self.target_port}/{self.protocol}"
