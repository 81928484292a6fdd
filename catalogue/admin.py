"""The Django admin for operators: raw data, with the publishing workflow as actions.

Actions go through catalogue.services like every other door, so the audit
trail and the rules are the same. Templates and published versions are read-only here.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from catalogue import services
from catalogue.models import AuditEvent, Membership, Organization, Service, ServiceVersion, Subscription
from config.errors import AgoraError


def _actor(request: HttpRequest) -> services.Actor:
    return services.Actor(user=request.user, ip=request.META.get("REMOTE_ADDR"))


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "email", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "slug", "email"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization__kind"]
    search_fields = ["user__username", "organization__name"]
    autocomplete_fields = ["user", "organization"]


class ServiceVersionInline(admin.TabularInline):
    model = ServiceVersion
    extra = 0
    fields = ("version", "state", "template_filename", "created_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "publisher", "category", "state", "updated_at"]
    list_filter = ["state", "category", "publisher"]
    search_fields = ["name", "slug", "summary"]
    readonly_fields = ["state", "created_at", "updated_at"]
    inlines = [ServiceVersionInline]


class RejectForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea, label=_("Why is it rejected? The publisher reads this."))


@admin.register(ServiceVersion)
class ServiceVersionAdmin(admin.ModelAdmin):
    list_display = ["service", "version", "state", "created_at", "submitted_at", "reviewed_at"]
    list_filter = ["state", "service__publisher"]
    search_fields = ["service__name", "version"]
    actions = ["approve", "reject", "deprecate", "retire"]
    readonly_fields = [
        "service",
        "version",
        "major",
        "minor",
        "patch",
        "is_release",
        "template",
        "template_filename",
        "template_sha256",
        "template_size",
        "validation_report",
        "inputs_schema",
        "state",
        "review_reason",
        "reviewed_by",
        "created_by",
        "created_at",
        "submitted_at",
        "reviewed_at",
        "published_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come in through an upload, which validates them

    def _run(self, request: HttpRequest, queryset: QuerySet[ServiceVersion], verb: str, **kwargs: str) -> None:
        action = getattr(services, f"version_{verb}")
        done = 0
        for version in queryset:
            try:
                action(actor=_actor(request), version=version, **kwargs)
                done += 1
            except AgoraError as error:
                self.message_user(request, f"{version}: {error.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} version(s): {verb} done.", messages.SUCCESS)

    @admin.action(description=_("Approve and publish the selected versions"))
    def approve(self, request: HttpRequest, queryset: QuerySet[ServiceVersion]) -> None:
        self._run(request, queryset, "approve")

    @admin.action(description=_("Reject the selected versions, with a reason"))
    def reject(self, request: HttpRequest, queryset: QuerySet[ServiceVersion]) -> HttpResponse | None:
        if "reason" in request.POST:
            form = RejectForm(request.POST)
            if form.is_valid():
                self._run(request, queryset, "reject", reason=form.cleaned_data["reason"])
                return None
        else:
            form = RejectForm()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Reject versions"),
            "queryset": queryset,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/catalogue/reject.html", context)

    @admin.action(description=_("Deprecate the selected versions"))
    def deprecate(self, request: HttpRequest, queryset: QuerySet[ServiceVersion]) -> None:
        self._run(request, queryset, "deprecate")

    @admin.action(description=_("Retire the selected versions"))
    def retire(self, request: HttpRequest, queryset: QuerySet[ServiceVersion]) -> None:
        self._run(request, queryset, "retire")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["name", "subscriber", "version", "state", "created_at"]
    list_filter = ["state", "subscriber"]
    search_fields = ["name", "subscriber__name", "version__service__name"]
    exclude = ["secret_inputs"]  # encrypted; never shown
    readonly_fields = ["subscriber", "version", "inputs", "created_by", "created_at", "updated_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "organization", "action", "object_repr", "ip_address"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_name", "object_repr", "action"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
