"""`/metrics`: the platform's own figures in Prometheus' text format, read from the database at scrape time.

Deployments and steps by state, steps finished, the job queue, collectors' lag, firing alerts and the
clouds' reachability. Figures of tenants' services are not here: those are in the monitoring store.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from crane.models import Target
from monitoring.models import Alert, CollectorHeartbeat, TargetHealth
from orchestrator.models import Deployment, Step
from orchestrator.queue import step_queue

log = logging.getLogger(__name__)

# The classic text format generate_latest writes, which every Prometheus version reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PlatformCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from self._deployments()
        yield from self._steps()
        yield from self._queue()
        yield from self._collectors()
        yield from self._alerts()
        yield from self._targets()

    def _deployments(self) -> Iterator[Metric]:
        counts = dict(Deployment.objects.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
        gauge = GaugeMetricFamily("agora_deployments", "Deployments by state.", labels=["state"])
        for state in Deployment.State.values:
            gauge.add_metric([state], counts.get(state, 0))
        yield gauge

    def _steps(self) -> Iterator[Metric]:
        counts = dict(Step.objects.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
        current = GaugeMetricFamily("agora_steps", "Steps waiting, queued or running.", labels=["state"])
        for state in (Step.State.PENDING, Step.State.QUEUED, Step.State.RUNNING):
            current.add_metric([state], counts.get(state, 0))
        yield current
        finished = CounterMetricFamily("agora_steps_finished", "Steps run to an end, by outcome.", labels=["state"])
        for state in Step.TERMINAL_STATES:
            finished.add_metric([state], counts.get(state, 0))
        yield finished

    def _queue(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("agora_redis_up", "Whether the job queue's Redis answers.")
        try:
            length = step_queue().count
        except Exception as exc:  # Redis down is a figure to report, not an error of the scrape
            log.warning("/metrics cannot read the job queue: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily("agora_queue_jobs", "Step jobs waiting on the queue.", labels=["queue"])
        jobs.add_metric([settings.AGORA_QUEUE], length)
        yield jobs

    def _collectors(self) -> Iterator[Metric]:
        now = timezone.now()
        lag = GaugeMetricFamily(
            "agora_collector_lag_seconds", "Seconds since each collector finished a round.", labels=["collector"]
        )
        duration = GaugeMetricFamily(
            "agora_collector_round_seconds", "How long each collector's last round took.", labels=["collector"]
        )
        containers = GaugeMetricFamily(
            "agora_collector_containers", "Containers each collector watched in its last round.", labels=["collector"]
        )
        for beat in CollectorHeartbeat.objects.order_by("name"):
            lag.add_metric([beat.name], max(0.0, (now - beat.last_round_at).total_seconds()))
            duration.add_metric([beat.name], beat.round_seconds)
            containers.add_metric([beat.name], beat.containers)
        yield from (lag, duration, containers)

    def _alerts(self) -> Iterator[Metric]:
        counts = dict(
            Alert.objects.filter(state=Alert.State.FIRING)
            .values_list("kind")
            .annotate(n=Count("pk"))
            .values_list("kind", "n")
        )
        gauge = GaugeMetricFamily("agora_alerts_firing", "Alerts firing, by kind.", labels=["kind"])
        for kind in sorted(counts):
            gauge.add_metric([kind], counts[kind])
        yield gauge

    def _targets(self) -> Iterator[Metric]:
        reachable = GaugeMetricFamily(
            "agora_target_reachable", "Whether each cloud answered its last health check.", labels=["target"]
        )
        nodes_down = GaugeMetricFamily(
            "agora_target_nodes_down", "Swarm nodes down at each cloud's last check.", labels=["target"]
        )
        newest = TargetHealth.objects.filter(target=OuterRef("pk")).order_by("-time")
        checked = Target.objects.annotate(
            last_reachable=Subquery(newest.values("reachable")[:1]),
            last_nodes_down=Subquery(newest.values("nodes_down")[:1]),
        ).filter(last_reachable__isnull=False)
        for target in checked.order_by("name"):
            reachable.add_metric([target.name], 1 if target.last_reachable else 0)
            nodes_down.add_metric([target.name], target.last_nodes_down)
        yield from (reachable, nodes_down)


def _allowed(request: HttpRequest) -> bool:
    """A scraper on an allowed network, or one that shows the token (when one is set)."""
    token: str = settings.AGORA_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if given and hmac.compare_digest(given.encode(), token.encode()):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in settings.AGORA_METRICS_ALLOWED_NETWORKS)


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse("Not allowed: scrape from an allowed network or send the metrics token.\n", status=403)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlatformCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE)
