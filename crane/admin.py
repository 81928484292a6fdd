"""The operator's admin for targets: everything editable except the TLS key, which can only be replaced.

A pasted key goes through crane.services.target_set_tls_key (validated, encrypted)
and is never rendered back, not even after a validation error.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from crane import services, targets
from crane.errors import InvalidSpec
from crane.models import PublishedPort, Target


class WriteOnlyTextarea(forms.Textarea):
    def format_value(self, value: Any) -> str | None:
        return None


class TargetForm(forms.ModelForm):
    new_tls_client_key = forms.CharField(
        label="New TLS client key",
        required=False,
        widget=WriteOnlyTextarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Paste an unencrypted PEM key to replace the stored one. It is encrypted when saved and never "
        "shown again.",
    )
    remove_tls_client_key = forms.BooleanField(label="Remove the stored TLS client key", required=False)

    class Meta:
        model = Target
        fields = [
            "name",
            "provider",
            "region",
            "public_host",
            "endpoint",
            "mode",
            "tls_ca_certificate",
            "tls_client_certificate",
            "port_range_start",
            "port_range_end",
            "max_cpus",
            "max_memory",
            "max_services",
            "default_cpus",
            "default_memory",
            "labels",
        ]

    def clean_new_tls_client_key(self) -> str:
        key = str(self.cleaned_data.get("new_tls_client_key") or "")
        if not key.strip():
            return ""
        try:
            return services.tls_key_check(key)
        except InvalidSpec as exc:
            raise forms.ValidationError(exc.message) from None


# What the last reachability check found: shown, never edited.
_CHECK_FIELDS = (
    "state",
    "checked_at",
    "docker_version",
    "api_version",
    "swarm_managers",
    "swarm_workers",
    "swarm_nodes_down",
    "last_error",
    "created_at",
    "updated_at",
)


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin):
    form = TargetForm
    list_display = ["name", "provider", "region", "mode", "state", "endpoint", "checked_at"]
    list_filter = ["mode", "state", "provider"]
    search_fields = ["name", "provider", "region", "endpoint", "public_host"]
    readonly_fields = ["tls_client_key", *_CHECK_FIELDS]
    fieldsets = [
        (None, {"fields": ["name", "provider", "region", "public_host", "mode"]}),
        (
            "Docker endpoint",
            {
                "fields": [
                    "endpoint",
                    "tls_ca_certificate",
                    "tls_client_certificate",
                    "tls_client_key",
                    "new_tls_client_key",
                    "remove_tls_client_key",
                ]
            },
        ),
        (
            "Capacity",
            {
                "fields": [
                    "port_range_start",
                    "port_range_end",
                    "max_cpus",
                    "max_memory",
                    "max_services",
                    "default_cpus",
                    "default_memory",
                    "labels",
                ]
            },
        ),
        (
            "Last check",
            {"fields": list(_CHECK_FIELDS)},
        ),
    ]
    actions = ["check_targets"]

    @admin.display(description="TLS client key")
    def tls_client_key(self, obj: Target) -> str:
        return "stored (encrypted)" if obj.has_tls_key else "none"

    def save_model(self, request: HttpRequest, obj: Target, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        key = form.cleaned_data.get("new_tls_client_key") or ""
        if key:
            services.target_set_tls_key(target=obj, key_pem=key)
        elif form.cleaned_data.get("remove_tls_client_key"):
            services.target_set_tls_key(target=obj, key_pem="")
        else:
            targets.forget_clients()  # the endpoint or certificates may have changed

    @admin.action(description="Check the selected targets now")
    def check_targets(self, request: HttpRequest, queryset: QuerySet[Target]) -> None:
        for target in queryset:
            result = targets.target_check(target)
            level = messages.SUCCESS if result.state == Target.State.REACHABLE else messages.WARNING
            self.message_user(request, f"{target.name}: {result.state} {result.error}".strip(), level)


@admin.register(PublishedPort)
class PublishedPortAdmin(admin.ModelAdmin):
    list_display = ["target", "port", "deployment", "node", "target_port", "protocol", "created_at"]
    list_filter = ["target", "protocol"]
    search_fields = ["deployment", "node"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
