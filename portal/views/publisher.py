"""Publisher pages: my services and their versions, new services, uploads with their problems, submitting.

Every page acts for the current organization (portal.context), which must be a publisher; an
object of another organization is not found (404). Writes call catalogue.services, the same
functions the API calls, so the rules (roles, states, validation) are written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.core.paginator import Page, Paginator
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from catalogue import selectors, services
from catalogue.models import Organization, Service, ServiceVersion, Subscription
from config.errors import AgoraError
from orchestrator.inputs import check_input_values
from orchestrator.plan import PlannedStep
from orchestrator.services import plan_for
from orchestrator.tosca.csar import is_zip
from portal.context import require_membership

PUBLISHER_KINDS = (Organization.Kind.PUBLISHER,)
PAGE_SIZE = 25
# The longest source shown with its problems; a longer template lists the problems past it on top.
MAX_SOURCE_LINES = 5000
PASTED_FILENAME = "template.yaml"


def page_of(request: HttpRequest, items: QuerySet[Any], per_page: int = PAGE_SIZE) -> Page[Any]:
    return Paginator(items, per_page).get_page(request.GET.get("page"))


# --- a template's source with its problems at their lines -------------------------------------------


@dataclass(frozen=True)
class SourceLine:
    number: int
    text: str
    problems: list[Mapping[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class AnnotatedSource:
    """The template as written, line by line, each with the problems found on it.

    `elsewhere` keeps the problems that have no line in this file (the whole file, another file of
    a CSAR, a line past the end): a page lists them on top, above the source.
    """

    lines: list[SourceLine]
    elsewhere: list[Mapping[str, Any]]
    truncated: bool = False
    archive: bool = False  # a CSAR: its source is not shown

    @property
    def placed(self) -> int:
        return sum(len(line.problems) for line in self.lines)

    @property
    def count(self) -> int:
        return self.placed + len(self.elsewhere)

    @property
    def first_problem_line(self) -> int | None:
        return next((line.number for line in self.lines if line.problems), None)


def source_text(data: bytes) -> str | None:
    """The template as text, or None for a CSAR (a zip archive), which is not shown."""
    if is_zip(data):
        return None
    return data.decode("utf-8", errors="replace")


def annotate(text: str | None, problems: Iterable[Mapping[str, Any]], filename: str) -> AnnotatedSource:
    """Places each problem at its line of `filename`; the others go to `elsewhere`."""
    problems = list(problems)
    if text is None:
        return AnnotatedSource(lines=[], elsewhere=problems, archive=True)
    raw = text.split("\n")
    if raw and raw[-1] == "" and not any(p.get("line") == len(raw) for p in problems):
        raw.pop()  # the newline that ends the last line does not start another one
    truncated = len(raw) > MAX_SOURCE_LINES
    raw = raw[:MAX_SOURCE_LINES]
    by_line: dict[int, list[Mapping[str, Any]]] = {}
    elsewhere = []
    for problem in problems:
        line = problem.get("line")
        in_this_file = problem.get("file") in (None, filename)
        if in_this_file and isinstance(line, int) and 1 <= line <= len(raw):
            by_line.setdefault(line, []).append(problem)
        else:
            elsewhere.append(problem)
    lines = [SourceLine(number, text, by_line.get(number, [])) for number, text in enumerate(raw, start=1)]
    return AnnotatedSource(lines=lines, elsewhere=elsewhere, truncated=truncated)


def stored_source(version: ServiceVersion) -> AnnotatedSource:
    with version.template.open("rb") as stored:
        data = stored.read()
    problems = version.validation_report.get("problems", [])
    return annotate(source_text(data), problems, version.template_filename)


# --- what deploying a version would do ------------------------------------------------------------------


@dataclass(frozen=True)
class PlanPreview:
    """What deploying the version would do, level by level, as `manage.py tosca plan` prints it.

    A template may require inputs without defaults; the preview gives them sample values (listed in
    `samples`) because the steps and their order depend on the template, not on the values.
    """

    levels: list[list[PlannedStep]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    samples: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def sample_value(spec: Mapping[str, Any]) -> Any:
    """A value of the input's type that meets its simplest constraints, for a preview only."""
    for constraint in spec.get("constraints") or []:
        for op, arg in constraint.items():
            if op == "valid_values" and arg:
                return arg[0]
            if op in ("equal", "greater_or_equal"):
                return arg
            if op == "in_range" and isinstance(arg, list) and arg:
                return arg[0]
            if op == "greater_than" and isinstance(arg, int | float):
                return arg + 1
            if op == "min_length" and isinstance(arg, int):
                return "x" * arg
    return {
        "integer": 1,
        "float": 1.0,
        "boolean": False,
        "scalar-unit.size": "1 GB",
        "scalar-unit.time": "30 s",
        "list": [],
        "map": {},
    }.get(str(spec.get("type", "string")), "sample")


def plan_preview(version: ServiceVersion) -> PlanPreview:
    schema: dict[str, dict[str, Any]] = version.inputs_schema or {}
    _values, missing = check_input_values(schema, {})
    samples = {error.input: sample_value(schema[error.input]) for error in missing if error.input in schema}
    with version.template.open("rb") as stored:
        template = stored.read()
    try:
        plan = plan_for(template, version.template_filename, samples)
    except AgoraError as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        reasons = [str(v) for v in details.values() if isinstance(v, str)] or [exc.message]
        return PlanPreview(samples=samples, problems=reasons)
    return PlanPreview(levels=plan.levels(), outputs=list(plan.outputs), samples=samples)


# --- forms: the shape of the input; the rules are in catalogue.services --------------------------------


class ServiceForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    slug = forms.SlugField(
        label=gettext_lazy("Short name in addresses"),
        max_length=100,
        required=False,
        help_text=gettext_lazy("Letters, digits and hyphens; left empty, it is made from the name."),
    )
    summary = forms.CharField(label=gettext_lazy("Summary"), max_length=300, required=False)
    description = forms.CharField(
        label=gettext_lazy("Description"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=gettext_lazy("Markdown."),
    )
    category = forms.CharField(label=gettext_lazy("Category"), max_length=100, required=False)
    tags = forms.CharField(
        label=gettext_lazy("Tags"),
        required=False,
        help_text=gettext_lazy("Words separated by commas, such as: forms, participation."),
    )

    def clean_tags(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]


class VersionUploadForm(forms.Form):
    version = forms.CharField(
        label=gettext_lazy("Version"),
        max_length=64,
        help_text=gettext_lazy("A semantic version, such as 1.0.0 or 2.1.0-rc.1."),
    )
    file = forms.FileField(
        label=gettext_lazy("Template file"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".yaml,.yml,.csar,.zip"}),
        help_text=gettext_lazy("A TOSCA service template (YAML) or a CSAR (zip)."),
    )
    source = forms.CharField(
        label=gettext_lazy("Or paste the template (YAML)"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false"}),
    )
    changelog = forms.CharField(
        label=gettext_lazy("What changed"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        has_file = bool(cleaned.get("file"))
        has_source = bool(cleaned.get("source", "").strip())
        if has_file and has_source:
            raise forms.ValidationError(_("Choose a file or paste the template, not both."), code="both")
        if not has_file and not has_source:
            raise forms.ValidationError(_("Choose a template file or paste the template."), code="missing")
        return cleaned

    def template(self) -> tuple[str, bytes]:
        """The file name and bytes of the template, from the file or the text box."""
        upload: UploadedFile | None = self.cleaned_data.get("file")
        if upload:
            return upload.name or PASTED_FILENAME, services.read_template_upload(upload)
        return PASTED_FILENAME, self.cleaned_data["source"].encode()


# --- pages -----------------------------------------------------------------------------------------


def _my_services(request: HttpRequest, organization: Organization) -> QuerySet[Service]:
    return selectors.services_visible_to(request.user).filter(publisher=organization)


def _my_versions(request: HttpRequest, organization: Organization) -> QuerySet[ServiceVersion]:
    return selectors.versions_visible_to(request.user).filter(service__publisher=organization)


@login_required
def service_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, kinds=PUBLISHER_KINDS)
    live = Q(versions__subscriptions__state=Subscription.State.ACTIVE)
    newest = ServiceVersion.objects.filter(service=OuterRef("pk")).order_by(
        "-major", "-minor", "-patch", "-is_release", "-created_at"
    )
    listed = (
        _my_services(request, membership.organization)
        .annotate(
            versions_count=Count("versions", distinct=True),
            waiting_count=Count("versions", filter=Q(versions__state=ServiceVersion.State.SUBMITTED), distinct=True),
            subscriptions_count=Count("versions__subscriptions", filter=live, distinct=True),
            newest_version=Subquery(newest.values("version")[:1]),
            newest_state=Subquery(newest.values("state")[:1]),
        )
        .order_by("name")
    )
    page = page_of(request, listed)
    labels = dict(ServiceVersion.State.choices)
    for service in page:
        service.newest_state_label = labels.get(service.newest_state, "")
    return render(
        request,
        "portal/publisher/services.html",
        {
            "organization": membership.organization,
            "can_write": membership.role in selectors.WRITE_ROLES,
            "page": page,
        },
    )


@login_required
def service_create(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, kinds=PUBLISHER_KINDS)
    form = ServiceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            service = services.service_create(
                actor=services.Actor.from_request(request), publisher=membership.organization, **form.cleaned_data
            )
        except AgoraError as exc:
            form.add_error("slug" if exc.code == "duplicate" else None, exc.message)
        else:
            messages.success(request, _("%(name)s is created. Now upload its first version.") % {"name": service.name})
            return HttpResponseRedirect(reverse("portal:publisher-version-upload", args=[service.slug]))
    status = 400 if form.errors else 200
    context = {"organization": membership.organization, "form": form}
    return render(request, "portal/publisher/service_form.html", context, status=status)


@login_required
def service_detail(request: HttpRequest, slug: str) -> HttpResponse:
    membership = require_membership(request, kinds=PUBLISHER_KINDS)
    service = get_object_or_404(_my_services(request, membership.organization), slug=slug)
    versions = list(selectors.versions_visible_to(request.user).filter(service=service))
    return render(
        request,
        "portal/publisher/service.html",
        {
            "organization": membership.organization,
            "can_write": membership.role in selectors.WRITE_ROLES,
            "service": service,
            "versions": versions,
            "subscriptions_total": sum(v.subscriptions_count for v in versions),  # type: ignore[attr-defined]
        },
    )


@login_required
def version_upload(request: HttpRequest, slug: str) -> HttpResponse:
    membership = require_membership(request, kinds=PUBLISHER_KINDS)
    service = get_object_or_404(_my_services(request, membership.organization), slug=slug)
    form = VersionUploadForm(request.POST or None, request.FILES or None)
    source: AnnotatedSource | None = None
    if request.method == "POST" and form.is_valid():
        filename, data = PASTED_FILENAME, b""
        try:
            filename, data = form.template()
            version = services.version_upload(
                actor=services.Actor.from_request(request),
                service=service,
                version=form.cleaned_data["version"],
                filename=filename,
                data=data,
                changelog=form.cleaned_data["changelog"],
            )
        except AgoraError as exc:
            form.add_error("version" if exc.code in ("duplicate", "invalid_version") else None, exc.message)
            if exc.code == "invalid_template" and isinstance(exc.details, dict):
                text = source_text(data)
                source = annotate(text, exc.details.get("problems", []), filename)
                if text is not None:
                    # The text goes back into the box, so the publisher fixes it here and uploads again.
                    form.data = request.POST.copy()
                    form.data["source"] = text
        else:
            if version.is_deployable:
                messages.success(request, _("Version %(version)s is stored as a draft.") % {"version": version.version})
            else:
                messages.warning(
                    request,
                    _("Version %(version)s is valid TOSCA but Agora cannot deploy it; see its problems.")
                    % {"version": version.version},
                )
            return HttpResponseRedirect(reverse("portal:publisher-version", args=[version.pk]))
    status = 400 if form.errors else 200
    context = {"organization": membership.organization, "service": service, "form": form, "source": source}
    return render(request, "portal/publisher/version_upload.html", context, status=status)


@login_required
def version_detail(request: HttpRequest, pk: int) -> HttpResponse:
    membership = require_membership(request, kinds=PUBLISHER_KINDS)
    version = get_object_or_404(_my_versions(request, membership.organization), pk=pk)
    return render(
        request,
        "portal/publisher/version.html",
        {
            "organization": membership.organization,
            "can_write": membership.role in selectors.WRITE_ROLES,
            "version": version,
            "service": version.service,
            "source": stored_source(version),
            "plan": plan_preview(version) if version.is_deployable else None,
            "can_submit": version.state == ServiceVersion.State.DRAFT and version.is_deployable,
        },
    )


VERSION_ACTIONS = {
    "submit": (
        services.version_submit,
        gettext_lazy("Version %(version)s is submitted; the operators review it next."),
    ),
    "deprecate": (
        services.version_deprecate,
        gettext_lazy("Version %(version)s is deprecated: it runs on, and takes no new subscriptions."),
    ),
    "retire": (services.version_retire, gettext_lazy("Version %(version)s is retired.")),
}


def _version_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    membership = require_membership(request, kinds=PUBLISHER_KINDS)
    version = get_object_or_404(_my_versions(request, membership.organization), pk=pk)
    if request.method != "POST":  # checked after the lookup: to anyone else the address does not exist at all
        return HttpResponseNotAllowed(["POST"])
    act, done = VERSION_ACTIONS[action]
    try:
        act(actor=services.Actor.from_request(request), version=version)
    except AgoraError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done % {"version": version.version})
    return HttpResponseRedirect(reverse("portal:publisher-version", args=[version.pk]))


@login_required
def version_submit(request: HttpRequest, pk: int) -> HttpResponse:
    return _version_action(request, pk, "submit")


@login_required
def version_deprecate(request: HttpRequest, pk: int) -> HttpResponse:
    return _version_action(request, pk, "deprecate")


@login_required
def version_retire(request: HttpRequest, pk: int) -> HttpResponse:
    return _version_action(request, pk, "retire")
