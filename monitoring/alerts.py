"""Alert rules, evaluated after every collector round: raise and resolve alerts, and tell the owner.

Rules are AlertRule rows: one per deployment and kind, or a default (deployment blank) for every
deployment without one of that kind; a disabled rule switches its kind off. Without a default row,
the built-in DEFAULT_RULES apply:

| kind        | fires when                                                         | default          |
| ----------- | ------------------------------------------------------------------ | ---------------- |
| restarting  | a node restarted at least `threshold` times within `duration`      | 1 within 5 min   |
| unhealthy   | a node has a container failing its health check for `duration`     | 60 s             |
| cpu         | a node's busiest container uses above `threshold`% of one CPU for `duration` | 90% for 5 min |
| memory      | a node's fullest container is above `threshold`% of its limit for `duration` | 90% for 5 min |
| unreachable | the deployment's target has not answered for `duration`            | 60 s             |

Every condition is true, false or not known. An alert is raised when its condition is true and
resolved only when it is seen false: a restarting alert when no restart happened within the
duration, the others as soon as a reading is back under the threshold (or healthy, or the target
answers), or when the node or the deployment is gone. A condition that is not known (a collector
just started and has not watched long enough, a target that does not answer) changes nothing,
so a restarted collector never resolves and raises an alert again: at most it raises one later.

At most one alert fires per deployment, kind and node (a partial unique index): collectors that
raise the same alert at once store one, and only the one that stored it sends its e-mail. E-mails
go on raising and on resolving to the addresses the registered recipient sources return
(the catalogue registers the owning organization's address).
"""

from __future__ import annotations

import datetime
import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q

from crane.models import Target
from monitoring.health import NodeFacts
from monitoring.models import Alert, AlertRule
from orchestrator.models import Deployment

log = logging.getLogger(__name__)

Kind = AlertRule.Kind
NODE_KINDS = frozenset({Kind.RESTARTING, Kind.UNHEALTHY, Kind.CPU, Kind.MEMORY})
# Unnotified alerts (the mail server was away) are tried again while they are this recent.
NOTIFY_RETRY_SECONDS = 3600


@dataclass(frozen=True)
class Rule:
    kind: str
    threshold: float | None
    seconds: int


DEFAULT_RULES: dict[str, Rule] = {
    Kind.RESTARTING: Rule(Kind.RESTARTING, 1, 300),
    Kind.UNHEALTHY: Rule(Kind.UNHEALTHY, None, 60),
    Kind.CPU: Rule(Kind.CPU, 90, 300),
    Kind.MEMORY: Rule(Kind.MEMORY, 90, 300),
    Kind.UNREACHABLE: Rule(Kind.UNREACHABLE, None, 60),
}


def rules_for(deployment_ids: Iterable[str]) -> dict[str, dict[str, Rule]]:
    """The rules in force for each deployment, by kind (a kind switched off is absent)."""
    ids = list(deployment_ids)
    defaults: dict[str, Rule | None] = dict(DEFAULT_RULES)
    own: dict[str, dict[str, Rule | None]] = {deployment: {} for deployment in ids}
    for row in AlertRule.objects.filter(Q(deployment__isnull=True) | Q(deployment_id__in=ids)):
        threshold = row.threshold if row.threshold is not None else DEFAULT_RULES[row.kind].threshold
        rule = Rule(row.kind, threshold, row.duration_seconds) if row.enabled else None
        if row.deployment_id is None:
            defaults[row.kind] = rule
        else:
            own[row.deployment_id][row.kind] = rule
    result: dict[str, dict[str, Rule]] = {}
    for deployment in ids:
        merged = {**defaults, **own[deployment]}
        result[deployment] = {kind: rule for kind, rule in merged.items() if rule is not None}
    return result


class Windows:
    """Recent readings of each node (CPU, memory, failing health checks), kept in memory by the
    collector for conditions that must hold for a while."""

    def __init__(self, keep_seconds: float = 86_400) -> None:
        self.keep = datetime.timedelta(seconds=keep_seconds)
        self._values: dict[tuple[str, str, str], deque[tuple[datetime.datetime, float]]] = {}

    def add(self, deployment: str, node: str, metric: str, time: datetime.datetime, value: float) -> None:
        values = self._values.setdefault((deployment, node, metric), deque())
        values.append((time, value))
        while values and values[0][0] < time - self.keep:
            values.popleft()

    def keep_only(self, nodes: Iterable[tuple[str, str]]) -> None:
        """Forgets nodes no longer seen (removed deployments must not grow the collector's memory)."""
        wanted = set(nodes)
        for key in [k for k in self._values if (k[0], k[1]) not in wanted]:
            del self._values[key]

    def held_above(
        self,
        deployment: str,
        node: str,
        metric: str,
        *,
        above: float,
        seconds: float,
        now: datetime.datetime,
        stale_after: float,
    ) -> bool | None:
        """True: every reading for `seconds` up to the newest was above; False: the newest is not; None: not
        known (no recent reading, or above for a shorter time so far)."""
        values = self._values.get((deployment, node, metric))
        if not values or (now - values[-1][0]).total_seconds() > stale_after:
            return None
        if values[-1][1] <= above:
            return False
        start = values[-1][0]
        for time, value in reversed(values):
            if value <= above:
                break
            start = time
        return True if (now - start).total_seconds() >= seconds else None


@dataclass(frozen=True)
class Verdict:
    deployment: str
    kind: str
    node: str
    firing: bool | None
    message: str = ""


@dataclass(frozen=True)
class Changes:
    raised: tuple[Alert, ...] = ()
    resolved: tuple[Alert, ...] = ()


def _span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def node_verdicts(
    facts: NodeFacts, rules: dict[str, Rule], windows: Windows, *, now: datetime.datetime, stale_after: float
) -> list[Verdict]:
    """The node-level conditions of one node; `windows` must already hold this round's readings."""
    verdicts: list[Verdict] = []
    deployment, node = facts.deployment, facts.node
    rule = rules.get(Kind.RESTARTING)
    if rule is not None:
        since = now - datetime.timedelta(seconds=rule.seconds)
        count = facts.restarts_since(since)
        threshold = rule.threshold if rule.threshold is not None else 1
        firing: bool | None = None
        if count >= max(threshold, 1):
            firing = True
        elif facts.last_restart is None or facts.last_restart < since:
            firing = False
        error = f" Last error: {facts.last_error}" if facts.last_error else ""
        message = f'Node "{node}" restarted {count} time(s) in the last {_span(rule.seconds)}.{error}'
        verdicts.append(Verdict(deployment, Kind.RESTARTING, node, firing, message))
    rule = rules.get(Kind.UNHEALTHY)
    if rule is not None:
        firing = windows.held_above(
            deployment, node, "unhealthy", above=0.5, seconds=rule.seconds, now=now, stale_after=stale_after
        )
        message = (
            f'Node "{node}": {facts.unhealthy} container(s) failing their health check for {_span(rule.seconds)} '
            "or more."
        )
        verdicts.append(Verdict(deployment, Kind.UNHEALTHY, node, firing, message))
    for kind, metric, value, what in (
        (Kind.CPU, "cpu", facts.cpu_percent, "of one CPU"),
        (Kind.MEMORY, "memory", facts.memory_percent, "of its memory limit"),
    ):
        rule = rules.get(kind)
        if rule is None or rule.threshold is None:
            continue
        firing = windows.held_above(
            deployment, node, metric, above=rule.threshold, seconds=rule.seconds, now=now, stale_after=stale_after
        )
        shown = f"{value:.0f}%" if value is not None else "?"
        message = f'Node "{node}" uses {shown} {what}, above {rule.threshold:g}% for {_span(rule.seconds)} or more.'
        verdicts.append(Verdict(deployment, kind, node, firing, message))
    return verdicts


def record_readings(windows: Windows, facts: Iterable[NodeFacts], now: datetime.datetime) -> None:
    for fact in facts:
        windows.add(fact.deployment, fact.node, "unhealthy", now, 1.0 if fact.unhealthy else 0.0)
        if fact.cpu_percent is not None:
            windows.add(fact.deployment, fact.node, "cpu", now, fact.cpu_percent)
        if fact.memory_percent is not None:
            windows.add(fact.deployment, fact.node, "memory", now, fact.memory_percent)


def evaluate(
    target: Target,
    deployments: Sequence[Deployment],
    facts: dict[tuple[str, str], NodeFacts] | None,
    windows: Windows,
    *,
    now: datetime.datetime,
    unreachable_since: datetime.datetime | None,
    error: str = "",
    stale_after: float = 60.0,
) -> Changes:
    """Raise and resolve the alerts of the target's deployments after a round.

    `facts` is None when the target did not answer: then only `unreachable` alerts move.
    """
    by_id = {d.pk: d for d in deployments}
    rules = rules_for(by_id)
    verdicts: list[Verdict] = []
    if facts is not None:
        record_readings(windows, facts.values(), now)
        windows.keep_only(facts)
        for fact in facts.values():
            if fact.deployment in by_id:
                verdicts.extend(node_verdicts(fact, rules[fact.deployment], windows, now=now, stale_after=stale_after))
    for deployment in deployments:
        rule = rules[deployment.pk].get(Kind.UNREACHABLE)
        if rule is None:
            continue
        if unreachable_since is None:
            answered = facts is not None  # else: no check recorded yet, nothing known
            verdicts.append(Verdict(deployment.pk, Kind.UNREACHABLE, "", False if answered else None))
            continue
        down_for = (now - unreachable_since).total_seconds()
        message = f'Target "{target.name}" has not answered for {_span(down_for)}. {error}'.strip()
        long_enough = True if down_for >= rule.seconds else None
        verdicts.append(Verdict(deployment.pk, Kind.UNREACHABLE, "", long_enough, message))
    open_alerts = Alert.objects.filter(deployment_id__in=list(by_id), state=Alert.State.FIRING).select_related(
        "deployment"
    )
    firing = {(a.deployment_id, a.kind, a.node): a for a in open_alerts}
    decided = {(v.deployment, v.kind, v.node) for v in verdicts}
    if facts is not None:
        # Firing on a node that is no longer there: resolved, the node is gone.
        for key, alert in firing.items():
            if key not in decided and alert.kind in NODE_KINDS and (alert.deployment_id, alert.node) not in facts:
                verdicts.append(Verdict(*key, firing=False, message=f'Node "{alert.node}" is gone.'))
    changes = apply(verdicts, firing, by_id, now=now)
    removed = resolve_removed(target, now=now)
    return Changes(changes.raised, changes.resolved + removed.resolved)


def apply(
    verdicts: Iterable[Verdict],
    firing: dict[tuple[str, str, str], Alert],
    deployments: dict[str, Deployment],
    *,
    now: datetime.datetime,
) -> Changes:
    raised: list[Alert] = []
    resolved: list[Alert] = []
    for verdict in verdicts:
        key = (verdict.deployment, verdict.kind, verdict.node)
        current = firing.get(key)
        if verdict.firing is True and current is None:
            alert = raise_alert(deployments[verdict.deployment], verdict.kind, verdict.node, verdict.message, now=now)
            if alert is not None:
                raised.append(alert)
        elif verdict.firing is False and current is not None and resolve_alert(current, now=now):
            resolved.append(current)
    retry_notifications(firing.values(), deployments, now=now)
    return Changes(tuple(raised), tuple(resolved))


def raise_alert(deployment: Deployment, kind: str, node: str, message: str, *, now: datetime.datetime) -> Alert | None:
    """Stores a firing alert and sends its e-mail; None when the same alert already fires."""
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                deployment=deployment, kind=kind, node=node, message=message[:2000], raised_at=now
            )
    except IntegrityError:
        return None  # another collector raised it first, and tells the owner
    log.warning("alert raised: %s on %s/%s: %s", kind, deployment.pk, node or "*", message)
    notify(alert, deployment, resolved=False, now=now)
    return alert


def resolve_alert(alert: Alert, *, now: datetime.datetime, note: str = "") -> bool:
    """Resolves a firing alert (compare-and-set: only one collector does) and sends its e-mail."""
    changed = Alert.objects.filter(pk=alert.pk, state=Alert.State.FIRING).update(
        state=Alert.State.RESOLVED, resolved_at=now
    )
    if not changed:
        return False
    alert.state, alert.resolved_at = Alert.State.RESOLVED, now
    log.info("alert resolved: %s on %s/%s%s", alert.kind, alert.deployment_id, alert.node or "*", note)
    notify(alert, alert.deployment, resolved=True, now=now)
    return True


def resolve_removed(target: Target, *, now: datetime.datetime) -> Changes:
    """Alerts still firing for the target's removed deployments are resolved."""
    stale = Alert.objects.filter(
        deployment__target=target, deployment__state=Deployment.State.REMOVED, state=Alert.State.FIRING
    ).select_related("deployment")
    resolved = tuple(alert for alert in stale if resolve_alert(alert, now=now, note=" (deployment removed)"))
    return Changes(resolved=resolved)


def retry_notifications(alerts: Iterable[Alert], deployments: dict[str, Deployment], *, now: datetime.datetime) -> None:
    cutoff = now - datetime.timedelta(seconds=NOTIFY_RETRY_SECONDS)
    for alert in alerts:
        if alert.notified_at is None and alert.raised_at >= cutoff and alert.deployment_id in deployments:
            notify(alert, deployments[alert.deployment_id], resolved=False, now=now)


# --- who is told


RecipientSource = Callable[[Deployment], list[str]]
_sources: list[RecipientSource] = []


def register_recipients(source: RecipientSource) -> None:
    """Adds a function that names the e-mail addresses to alert for a deployment (idempotent)."""
    if source not in _sources:
        _sources.append(source)


def recipients_for(deployment: Deployment) -> list[str]:
    found: list[str] = []
    for source in _sources:
        try:
            addresses = source(deployment)
        except Exception:
            log.exception("recipient source %r failed for deployment %s", source, deployment.pk)
            continue
        found.extend(address for address in addresses if address and address not in found)
    return found


def notify(alert: Alert, deployment: Deployment, *, resolved: bool, now: datetime.datetime) -> bool:
    """E-mails the deployment's owners; a raised alert records that they were told."""
    recipients = recipients_for(deployment)
    if not recipients:
        return False
    label = AlertRule.Kind(alert.kind).label
    where = f"{deployment.name or deployment.pk}" + (f"/{alert.node}" if alert.node else "")
    subject = f"[Agora] {'Resolved' if resolved else 'Alert'}: {label} on {where}"
    lines = [
        f"Deployment: {deployment.name or '(no name)'} ({deployment.pk}) on target {deployment.target_id}",
        f"Alert: {label}" + (f", node {alert.node}" if alert.node else ""),
        f"Raised at: {alert.raised_at:%Y-%m-%d %H:%M:%S %Z}",
    ]
    if resolved and alert.resolved_at is not None:
        lines.append(f"Resolved at: {alert.resolved_at:%Y-%m-%d %H:%M:%S %Z}")
    lines += ["", alert.message]
    try:
        send_mail(subject, "\n".join(lines), None, recipients, fail_silently=False)
    except Exception as exc:  # an SMTP server away must not stop the collector; raising is retried
        log.warning("could not send the e-mail of alert %s: %s", alert.pk, exc)
        return False
    if not resolved:
        Alert.objects.filter(pk=alert.pk).update(notified_at=now)
        alert.notified_at = now
    return True
