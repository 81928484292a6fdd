"""Operator pages: the approval queue with each version's source, plan and problems; approve or reject;
the clouds and their health; every deployment; the audit trail.

Only the platform's operators reach them; for anyone else they do not exist (404). Approving and
rejecting call catalogue.services, as the API and the admin do. Lists are filtered with django-filter
and paginated, and each page reads in a fixed number of queries whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import django_filters
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import Coalesce, RowNumber
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from catalogue import selectors, services
from catalogue.models import AuditEvent, Organization, ServiceVersion
from config.errors import AgoraError
from crane.models import Target
from monitoring.models import TargetHealth
from orchestrator.models import Deployment, Step
from portal.context import is_operator
from portal.views.publisher import AnnotatedSource, page_of, plan_preview, stored_source

DEPLOYMENTS_PER_PAGE = 50
AUDIT_PER_PAGE = 50
HEALTH_TIMELINE = 10  # checks per cloud in the clouds page's small timeline

View = Callable[..., HttpResponse]


def operator_required(view: View) -> View:
    """Signed in (else to the login page) and an operator (else 404: the page does not exist for them)."""

    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_operator(request):
            raise Http404("Operators only")
        return view(request, *args, **kwargs)

    return login_required(checked)


# --- the approval queue and the review ------------------------------------------------------------------


class RejectForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why is it rejected?"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy("The publisher reads this; say what to change."),
    )


@operator_required
def queue(request: HttpRequest) -> HttpResponse:
    waiting = (
        selectors.versions_visible_to(request.user)
        .filter(state=ServiceVersion.State.SUBMITTED)
        .order_by("submitted_at", "pk")
    )
    return render(request, "portal/operator/queue.html", {"page": page_of(request, waiting)})


def _review(request: HttpRequest, version: ServiceVersion, form: RejectForm, status: int = 200) -> HttpResponse:
    source: AnnotatedSource = stored_source(version)
    plan = plan_preview(version) if version.is_deployable else None
    may_decide = selectors.is_operator(request.user, roles=selectors.WRITE_ROLES)  # a viewer reads the review
    context = {
        "version": version,
        "service": version.service,
        "source": source,
        "plan": plan,
        "form": form,
        "may_decide": may_decide,
    }
    return render(request, "portal/operator/review.html", context, status=status)


def _version(request: HttpRequest, pk: int) -> ServiceVersion:
    return get_object_or_404(selectors.versions_visible_to(request.user), pk=pk)


@operator_required
def review(request: HttpRequest, pk: int) -> HttpResponse:
    return _review(request, _version(request, pk), RejectForm())


@operator_required
@require_POST
def approve(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version(request, pk)
    try:
        services.version_approve(actor=services.Actor.from_request(request), version=version)
    except AgoraError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("portal:operator-version", args=[version.pk]))
    messages.success(
        request,
        _("%(service)s %(version)s is published.") % {"service": version.service.name, "version": version.version},
    )
    return HttpResponseRedirect(reverse("portal:operator-queue"))


@operator_required
@require_POST
def reject(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version(request, pk)
    form = RejectForm(request.POST)
    if not form.is_valid():
        return _review(request, version, form, status=400)
    try:
        services.version_reject(
            actor=services.Actor.from_request(request), version=version, reason=form.cleaned_data["reason"]
        )
    except AgoraError as exc:
        if exc.code == "reason_required":
            form.add_error("reason", exc.message)
            return _review(request, version, form, status=400)
        messages.error(request, exc.message)  # no longer submitted: the page shows where it stands
        return HttpResponseRedirect(reverse("portal:operator-version", args=[version.pk]))
    messages.success(
        request,
        _("%(service)s %(version)s is rejected; the publisher sees your reason.")
        % {"service": version.service.name, "version": version.version},
    )
    return HttpResponseRedirect(reverse("portal:operator-queue"))


# --- clouds ---------------------------------------------------------------------------------------------


@operator_required
def targets(request: HttpRequest) -> HttpResponse:
    checks = selectors.target_health_visible_to(request.user)

    def latest(column: str) -> Subquery:
        return Subquery(checks.filter(target=OuterRef("pk")).order_by("-time").values(column)[:1])

    live = ~Q(deployments__state=Deployment.State.REMOVED)
    clouds = list(
        selectors.targets_visible_to(request.user).annotate(
            deployments_count=Count("deployments", filter=live),
            health_time=latest("time"),
            health_reachable=latest("reachable"),
            health_nodes_ready=latest("nodes_ready"),
            health_nodes_down=latest("nodes_down"),
            health_containers=latest("containers_running"),
            health_cpus_free=latest("cpus_free"),
            health_cpus_total=latest("cpus_total"),
            health_memory_free=latest("memory_free"),
            health_memory_total=latest("memory_total"),
            health_error=latest("error"),
        )
    )
    # The last checks of every cloud in one query: numbered newest first within each cloud.
    recent = (
        checks.select_related(None)
        .annotate(rank=Window(RowNumber(), partition_by=[F("target_id")], order_by=F("time").desc()))
        .filter(rank__lte=HEALTH_TIMELINE)
        .order_by("target_id", "-time")
    )
    timelines: dict[int, list[TargetHealth]] = {}
    for check in recent:
        timelines.setdefault(check.target_id, []).append(check)
    rows = [(cloud, timelines.get(cloud.pk, [])) for cloud in clouds]
    return render(request, "portal/operator/targets.html", {"rows": rows, "timeline_size": HEALTH_TIMELINE})


# --- deployments ------------------------------------------------------------------------------------------


class DeploymentFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label=gettext_lazy("Id or name"))
    state = django_filters.ChoiceFilter(
        choices=Deployment.State.choices, label=gettext_lazy("State"), empty_label=gettext_lazy("Any state")
    )
    target = django_filters.ModelChoiceFilter(
        queryset=Target.objects.order_by("name"),
        to_field_name="name",
        label=gettext_lazy("Cloud"),
        empty_label=gettext_lazy("Any cloud"),
    )
    owner = django_filters.ModelChoiceFilter(
        queryset=Organization.objects.filter(kind=Organization.Kind.PUBLIC_ADMINISTRATION).order_by("name"),
        to_field_name="slug",
        method="by_owner",
        label=gettext_lazy("Owner"),
        empty_label=gettext_lazy("Any owner"),
    )

    class Meta:
        model = Deployment
        fields = ["q", "state", "target", "owner"]

    def search(self, queryset: QuerySet[Deployment], name: str, value: str) -> QuerySet[Deployment]:
        value = value.strip()
        return queryset.filter(Q(pk=value) | Q(name__icontains=value)) if value else queryset

    def by_owner(self, queryset: QuerySet[Deployment], name: str, value: Organization | None) -> QuerySet[Deployment]:
        return queryset.filter(owner=value.slug) if value is not None else queryset


def _steps_count(**conditions: Any) -> Coalesce:
    counted = (
        Step.objects.filter(deployment=OuterRef("pk"), generation=OuterRef("generation"), **conditions)
        .order_by()
        .values("deployment")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


@operator_required
def deployments(request: HttpRequest) -> HttpResponse:
    listed = (
        selectors.deployments_visible_to(request.user)
        # Only the cloud is shown (the owner is a column): joining subscriptions would make the database
        # join every deployment before sorting them. The template, plan and inputs can be large.
        .select_related(None)
        .select_related("target")
        .defer("template", "plan", "previous", "inputs", "secret_inputs", "outputs")
        .annotate(steps_total=_steps_count(), steps_done=_steps_count(state=Step.State.DONE))
        .order_by("-created_at", "pk")
    )
    filters = DeploymentFilterSet(request.GET or None, queryset=listed)
    page = page_of(request, filters.qs, DEPLOYMENTS_PER_PAGE)
    status = 400 if filters.form.errors else 200
    return render(request, "portal/operator/deployments.html", {"filters": filters, "page": page}, status=status)


# --- the audit trail ------------------------------------------------------------------------------------


class AuditFilterSet(django_filters.FilterSet):
    organization = django_filters.ModelChoiceFilter(
        queryset=Organization.objects.order_by("name"),
        to_field_name="slug",
        label=gettext_lazy("Organization"),
        empty_label=gettext_lazy("Any organization"),
    )
    actor = django_filters.CharFilter(field_name="actor_name", label=gettext_lazy("Who (user name)"))
    action = django_filters.CharFilter(
        field_name="action",
        lookup_expr="startswith",
        label=gettext_lazy("Action, such as version. or version.approved"),
    )
    object_type = django_filters.CharFilter(
        field_name="object_type", label=gettext_lazy("Object type, such as serviceversion or deployment")
    )
    object_id = django_filters.CharFilter(field_name="object_id", label=gettext_lazy("Object id"))
    since = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__gte",
        label=gettext_lazy("From (day)"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__lte",
        label=gettext_lazy("To (day)"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = AuditEvent
        fields = ["organization", "actor", "action", "object_type", "object_id", "since", "until"]


@operator_required
def audit(request: HttpRequest) -> HttpResponse:
    trail = selectors.audit_events_visible_to(request.user).order_by("-created_at", "-id")
    filters = AuditFilterSet(request.GET or None, queryset=trail)
    page = page_of(request, filters.qs, AUDIT_PER_PAGE)
    status = 400 if filters.form.errors else 200
    return render(request, "portal/operator/audit.html", {"filters": filters, "page": page}, status=status)
