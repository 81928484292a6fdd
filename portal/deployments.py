"""A deployment as a person follows it: steps, progress, timeline, a failure in plain words, outputs."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from catalogue import selectors
from catalogue.models import Subscription
from orchestrator.engine import current_steps
from orchestrator.models import Deployment, Event, Step
from portal.context import is_operator, memberships

# What went wrong, by the kind of the step that failed, in words a subscriber can act on.
FAILURE_REASONS = {
    "image": _("The service's software could not be prepared on the cloud (its image could not be built or found)."),
    "network": _("The cloud could not create the private network of your instance."),
    "volume": _("The cloud could not create the storage of your instance."),
    "secret": _("The cloud could not store the secret settings of your instance."),
    "service": _("The cloud could not start the containers of your instance."),
    "operation": _("A setup script of the service failed."),
    "wait": _("Your instance started but did not become ready and healthy in time."),
    "remove": _("Part of your instance could not be removed."),
}
GENERIC_REASON = _("A step of the deployment failed.")


def _can_act(request: HttpRequest, subscription: Subscription | None) -> bool:
    """Whether the retry and cancel buttons make sense for this person (the services check again)."""
    if is_operator(request):
        return True
    if subscription is None:
        return False
    return any(
        m.organization_id == subscription.subscriber_id and m.role in selectors.WRITE_ROLES
        for m in memberships(request)
    )


def output_rows(outputs: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    """(name, value, is_link): the service's URL becomes a link; other values are shown as text."""
    rows = []
    for name, value in sorted((outputs or {}).items()):
        is_link = isinstance(value, str) and value.startswith(("http://", "https://"))
        rows.append((name, value, is_link))
    return rows


def deployment_view(request: HttpRequest, deployment: Deployment, *, events_shown: int) -> dict[str, Any]:
    steps = current_steps(deployment)
    newest = list(Event.objects.filter(deployment=deployment).order_by("-created_at", "-id")[:events_shown])
    done = sum(1 for s in steps if s.state == Step.State.DONE)
    failed = [s for s in steps if s.state == Step.State.FAILED]
    subscription: Subscription | None = getattr(deployment, "subscription", None)
    busy = deployment.state in Deployment.BUSY_STATES
    return {
        "progress_key": f"{deployment.state}-{done}",
        "deployment": deployment,
        "subscription": subscription,
        "steps": steps,
        "events": newest[::-1],
        "done": done,
        "total": len(steps),
        "busy": busy,
        "failed_steps": failed,
        "reasons": [FAILURE_REASONS.get(s.kind, GENERIC_REASON) for s in failed] or [GENERIC_REASON],
        "outputs": output_rows(deployment.outputs) if deployment.state == Deployment.State.RUNNING else [],
        "can_act": _can_act(request, subscription),
        "can_cancel": deployment.state in Deployment.CANCELLABLE_STATES and not deployment.cancel_requested,
    }
