"""Subscriber pages: subscribe, follow a deployment, my services, upgrade and unsubscribe.

Every write calls the same catalogue service as the API; errors they raise are shown next to the
field they concern, or as a message. Objects of other organizations are not found (404).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from catalogue import selectors, services
from catalogue.models import Organization, Service, ServiceVersion, Subscription
from catalogue.services import Actor
from config.crypto import decrypt_json
from config.errors import AgoraError, ValidationFailed
from orchestrator.inputs import check_input_values
from orchestrator.models import Deployment
from orchestrator.plan import Plan
from orchestrator.services import plan_for
from portal import monitoring
from portal import selectors as portal_selectors
from portal.context import require_membership
from portal.deployments import deployment_view, output_rows
from portal.forms import SubscribeForm, input_field, input_field_name
from portal.htmx import is_htmx

SECRET_MASK = "••••••••"  # noqa: S105 - shown in place of a secret, not one
EVENTS_SHOWN = 50


def _template_of(version: ServiceVersion) -> bytes:
    with version.template.open("rb") as stored:
        return bytes(stored.read())


def _plan_or_problems(version: ServiceVersion, values: dict[str, Any]) -> tuple[Plan | None, list[str]]:
    """The plan these values would deploy, or the sentences saying why there is none."""
    try:
        return plan_for(_template_of(version), version.template_filename, values), []
    except ValidationFailed as exc:
        if isinstance(exc.details, dict) and exc.code == "invalid_inputs":
            return None, [str(message) for message in exc.details.values()]
        return None, [exc.message]


def _errors_to_form(form: SubscribeForm, exc: AgoraError) -> None:
    """A service's refusal shown where it belongs: next to the input, the name, or above the form."""
    if exc.code == "invalid_inputs" and isinstance(exc.details, dict):
        for name, message in exc.details.items():
            form.add_error(form.field_for_input(str(name)), str(message))
        return
    if exc.code == "duplicate":
        form.add_error("name", exc.message)
        return
    form.add_error(None, exc.message)


# --- subscribe -------------------------------------------------------------------------------------


def _subscribable(request: HttpRequest, slug: str) -> tuple[Service, ServiceVersion, list[ServiceVersion]]:
    service = get_object_or_404(
        selectors.services_visible_to(request.user).filter(state=Service.State.PUBLISHED), slug=slug
    )
    published = list(
        selectors.versions_visible_to(request.user).filter(service=service, state=ServiceVersion.State.PUBLISHED)
    )
    if not published:
        raise Http404("No published version")
    wanted = request.POST.get("version") or request.GET.get("version")
    version = next((v for v in published if str(v.pk) == wanted), published[0])
    return service, version, published


@login_required
def subscribe(request: HttpRequest, slug: str) -> HttpResponse:
    membership = require_membership(
        request, kinds=(Organization.Kind.PUBLIC_ADMINISTRATION,), roles=selectors.WRITE_ROLES
    )
    service, version, published = _subscribable(request, slug)
    schema: dict[str, dict[str, Any]] = version.inputs_schema or {}
    targets = selectors.targets_visible_to(request.user)
    values: dict[str, Any] = {}
    if request.method == "POST":
        pressed = request.POST.get("submit", "preview")
        source = SubscribeForm.SOURCE_YAML if pressed.startswith("yaml") else SubscribeForm.SOURCE_FORM
        form = SubscribeForm(request.POST, schema=schema, targets=targets, source=source)
        if form.is_valid():
            values = form.cleaned_data["values"]
            if pressed.endswith("subscribe"):
                try:
                    subscription = services.subscription_create(
                        actor=Actor.from_request(request),
                        subscriber=membership.organization,
                        version=version,
                        name=form.cleaned_data["name"],
                        inputs=values,
                        target=form.cleaned_data["target"],
                    )
                except AgoraError as exc:
                    _errors_to_form(form, exc)
                else:
                    messages.success(
                        request,
                        _("Subscribed to %(service)s. Your instance is being deployed.") % {"service": service.name},
                    )
                    return redirect("portal:deployment", subscription.deployment_id)
    else:
        form = SubscribeForm(initial={"name": service.slug}, schema=schema, targets=targets)
    plan, plan_problems = _plan_or_problems(version, values)
    return render(
        request,
        "portal/subscriber/subscribe.html",
        {
            "service": service,
            "version": version,
            "published": published,
            "form": form,
            "organization": membership.organization,
            "plan": plan,
            "plan_problems": plan_problems,
        },
    )


@login_required
@require_POST
def subscribe_plan(request: HttpRequest, slug: str) -> HttpResponse:
    """The summary of what subscribing would create, for the values typed so far (htmx)."""
    require_membership(request, kinds=(Organization.Kind.PUBLIC_ADMINISTRATION,), roles=selectors.WRITE_ROLES)
    _service, version, _published = _subscribable(request, slug)
    form = SubscribeForm(
        request.POST, schema=version.inputs_schema or {}, targets=selectors.targets_visible_to(request.user)
    )
    form.is_valid()
    values = (form.cleaned_data or {}).get("values", {})
    field_problems = [
        f"{name.removeprefix('input__')}: {' '.join(str(e) for e in errors)}"
        for name, errors in form.errors.items()
        if name.startswith("input__")
    ]
    plan, plan_problems = _plan_or_problems(version, values)
    return render(
        request,
        "portal/subscriber/_plan.html",
        {"plan": plan, "plan_problems": field_problems or plan_problems},
    )


# --- deployments -----------------------------------------------------------------------------------


def _deployment_for(request: HttpRequest, pk: str) -> Deployment:
    return get_object_or_404(selectors.deployments_visible_to(request.user), pk=pk)


@login_required
def deployment_detail(request: HttpRequest, pk: str) -> HttpResponse:
    deployment = _deployment_for(request, pk)
    context = deployment_view(request, deployment, events_shown=EVENTS_SHOWN)
    if is_htmx(request, target="deployment-live"):
        # Screen readers hear about progress only when it changed since the poll before.
        context["announce"] = request.GET.get("seen") != context["progress_key"]
        return render(request, "portal/subscriber/_deployment_live.html", context)
    return render(request, "portal/subscriber/deployment.html", context)


def _deployment_action(request: HttpRequest, pk: str, action: str) -> HttpResponse:
    deployment = _deployment_for(request, pk)
    try:
        if action == "retry":
            services.deployment_retry(actor=Actor.from_request(request), deployment=deployment)
            messages.success(request, _("Retrying from the step that failed."))
        else:
            services.deployment_cancel(actor=Actor.from_request(request), deployment=deployment)
            messages.success(request, _("Cancelling: running steps finish, waiting steps are dropped."))
    except AgoraError as exc:
        messages.error(request, exc.message)
    return redirect("portal:deployment", deployment.pk)


@login_required
@require_POST
def deployment_retry(request: HttpRequest, pk: str) -> HttpResponse:
    return _deployment_action(request, pk, "retry")


@login_required
@require_POST
def deployment_cancel(request: HttpRequest, pk: str) -> HttpResponse:
    return _deployment_action(request, pk, "cancel")


# --- my services -----------------------------------------------------------------------------------


@login_required
def subscription_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, kinds=(Organization.Kind.PUBLIC_ADMINISTRATION,))
    show_all = request.GET.get("show") == "all"
    subscriptions = (
        selectors.subscriptions_visible_to(request.user)
        .filter(subscriber=membership.organization)
        .select_related("version__service__publisher", "deployment__health", "deployment__target")
        .annotate(upgrade_available=portal_selectors.newer_version_exists())
        .order_by("name", "-created_at")
    )
    if not show_all:
        subscriptions = subscriptions.exclude(state=Subscription.State.CANCELLED)
    page = Paginator(subscriptions, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "portal/subscriber/subscriptions.html",
        {"page": page, "show_all": show_all, "organization": membership.organization},
    )


def _subscription_for(request: HttpRequest, pk: int) -> Subscription:
    return get_object_or_404(
        selectors.subscriptions_visible_to(request.user)
        .select_related("version__service__publisher", "deployment__health", "deployment__target")
        .annotate(upgrade_available=portal_selectors.newer_version_exists()),
        pk=pk,
    )


def masked_inputs(subscription: Subscription) -> list[tuple[str, Any, bool]]:
    """(name, value, secret) for display: a secret input shows only that it is set."""
    schema: dict[str, dict[str, Any]] = subscription.version.inputs_schema or {}
    rows: list[tuple[str, Any, bool]] = []
    for name in sorted(set(schema) | set(subscription.inputs)):
        if schema.get(name, {}).get("secret"):
            rows.append((name, SECRET_MASK if subscription.secret_inputs else "", True))
        else:
            rows.append((name, subscription.inputs.get(name, schema.get(name, {}).get("default")), False))
    return rows


@login_required
def subscription_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A subscription: state, health, outputs, settings, and its monitoring (charts, logs, alerts).

    htmx asks for one part at a time: the charts of another range, or the log lines of a search or a tail.
    """
    subscription = _subscription_for(request, pk)
    deployment = subscription.deployment
    range_name = request.GET.get("range", "1h")
    if range_name not in monitoring.CHART_RANGES:
        range_name = "1h"
    context: dict[str, Any] = {"subscription": subscription, "deployment": deployment}
    if deployment is not None:
        if is_htmx(request, target="charts"):
            context["charts"] = monitoring.charts(deployment.pk, range_name)
            return render(request, "portal/subscriber/_charts.html", context)
        if is_htmx(request, target="log-lines"):
            context["logs"] = monitoring.log_view(deployment.pk, request.GET)
            return render(request, "portal/subscriber/_log_lines.html", context)
        context.update(
            charts=monitoring.charts(deployment.pk, range_name),
            logs=monitoring.log_view(deployment.pk, request.GET),
            alerts=monitoring.recent_alerts(request.user, deployment.pk),
            log_levels=monitoring.LOG_LEVELS,
            health=getattr(deployment, "health", None),
            outputs=output_rows(deployment.outputs) if deployment.state == Deployment.State.RUNNING else [],
        )
    context["inputs"] = masked_inputs(subscription)
    return render(request, "portal/subscriber/subscription.html", context)


# --- upgrade and unsubscribe -------------------------------------------------------------------------


def _diff_plans(old: Plan, new: Plan) -> list[dict[str, str]]:
    """Each step of the two plans as added, changed, removed or unchanged (by its key and parameters).

    A preview for people: the engine decides again, from the same comparison, when the upgrade runs.
    """
    before = {s.key: s for s in old.steps}
    rows = []
    for step in new.steps:
        previous = before.get(step.key)
        if previous is None:
            status = "added"
        elif previous.kind != step.kind or dict(previous.params) != dict(step.params):
            status = "changed"
        else:
            status = "unchanged"
        rows.append({"key": step.key, "summary": step.summary, "status": status})
    new_keys = {s.key for s in new.steps}
    rows += [{"key": s.key, "summary": s.summary, "status": "removed"} for s in old.steps if s.key not in new_keys]
    return rows


def _diff_values(
    old_schema: dict[str, Any], new_schema: dict[str, Any], kept: dict[str, Any], new_values: dict[str, Any]
) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(set(old_schema) | set(new_schema)):
        secret = bool(new_schema.get(name, old_schema.get(name, {})).get("secret"))
        old = kept.get(name, old_schema.get(name, {}).get("default")) if name in old_schema else None
        new = new_values.get(name, new_schema.get(name, {}).get("default")) if name in new_schema else None
        if name not in new_schema:
            status = "removed"
        elif name not in old_schema:
            status = "added"
        elif old != new:
            status = "changed"
        else:
            status = "kept"
        if secret:
            old = SECRET_MASK if name in kept else ""
            new = SECRET_MASK if name in new_values or name in kept else ""
        rows.append({"name": name, "old": old, "new": new, "status": status, "secret": secret})
    return rows


@login_required
def subscription_upgrade(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = _subscription_for(request, pk)
    if subscription.state != Subscription.State.ACTIVE or subscription.deployment is None:
        raise Http404("Not an active subscription")
    current = subscription.version
    candidates = [
        v
        for v in selectors.versions_visible_to(request.user).filter(
            service_id=current.service_id, state=ServiceVersion.State.PUBLISHED
        )
        if v.pk != current.pk
    ]
    if not candidates:
        messages.info(request, _("There is no other published version to move to."))
        return redirect("portal:subscription", subscription.pk)
    wanted = request.POST.get("version") or request.GET.get("version")
    target = next((v for v in candidates if str(v.pk) == wanted), candidates[0])
    old_schema: dict[str, Any] = current.inputs_schema or {}
    new_schema: dict[str, Any] = target.inputs_schema or {}
    kept = {**subscription.inputs, **decrypt_json(subscription.secret_inputs)}
    # Inputs the new version adds can be given here; every other value is kept as the subscriber set it.
    added = {name: spec for name, spec in new_schema.items() if name not in old_schema}
    fields = {input_field_name(name): input_field(name, spec) for name, spec in sorted(added.items())}
    form = _AddedInputsForm(request.POST or None, extra=fields)
    given: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        given = {
            name: form.cleaned_data[input_field_name(name)]
            for name in added
            if form.cleaned_data.get(input_field_name(name)) not in (None, "")
        }
    if request.method == "POST" and form.is_valid():
        try:
            services.subscription_upgrade(
                actor=Actor.from_request(request), subscription=subscription, version=target, inputs=given or None
            )
        except AgoraError as exc:
            if exc.code == "invalid_inputs" and isinstance(exc.details, dict):
                for name, message in exc.details.items():
                    key = input_field_name(str(name))
                    form.add_error(key if key in form.fields else None, str(message))
            else:
                form.add_error(None, exc.message)
        else:
            messages.success(
                request, _("Upgrading to version %(version)s; only what differs changes.") % {"version": target.version}
            )
            return redirect("portal:deployment", subscription.deployment.pk)
    merged = {k: v for k, v in kept.items() if k in new_schema} | given
    new_values, _errors = check_input_values(new_schema, merged)
    plan, plan_problems = _plan_or_problems(target, merged)
    old_plan = Plan.from_dict(subscription.deployment.plan) if subscription.deployment.plan else Plan(steps=())
    return render(
        request,
        "portal/subscriber/upgrade.html",
        {
            "subscription": subscription,
            "current": current,
            "target": target,
            "candidates": candidates,
            "form": form,
            "value_rows": _diff_values(old_schema, new_schema, kept, new_values),
            "step_rows": _diff_plans(old_plan, plan) if plan is not None else [],
            "plan_problems": plan_problems,
        },
    )


class _AddedInputsForm(forms.Form):
    """Fields for the inputs a new version adds (built per page)."""

    def __init__(self, *args: Any, extra: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields.update(extra)


@login_required
def subscription_unsubscribe(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = _subscription_for(request, pk)
    if subscription.state == Subscription.State.CANCELLED:
        messages.info(request, _("This subscription is already cancelled."))
        return redirect("portal:subscription", subscription.pk)
    if request.method == "POST":
        try:
            services.subscription_cancel(actor=Actor.from_request(request), subscription=subscription)
        except AgoraError as exc:
            messages.error(request, exc.message)
            return redirect("portal:subscription", subscription.pk)
        messages.success(
            request, _("Unsubscribed from %(name)s; its instance is being removed.") % {"name": subscription.name}
        )
        if subscription.deployment_id:
            return redirect("portal:deployment", subscription.deployment_id)
        return redirect("portal:subscriptions")
    return render(request, "portal/subscriber/unsubscribe.html", {"subscription": subscription})
