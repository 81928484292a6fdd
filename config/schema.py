"""The OpenAPI schema documents the error answers the API really gives, for every operation, from one place.

drf-spectacular documents the 2xx answer of each operation; AgoraAutoSchema adds the errors that the
layers every request goes through give (config/api.py's exception handler, config/middleware.py, DRF's
authentication, parsers, paginator and filters), decided from the operation's shape:

- 400 where the operation reads a body or query parameters (DRF's field errors, or an Agora error);
- 401 wherever a token may be sent (a missing one where the operation needs it, an invalid one anywhere);
- 403 on writes (roles are checked by the services, CSRF by session authentication);
- 404 on routes with an id and on paginated lists (a page out of range);
- 409 on actions on an object (InvalidState: the object's state does not allow it);
- 413 on POST, PUT and PATCH (the request size limit, and the template limit of uploads);
- 429 and 503 (with Retry-After) on every operation: throttling, a lost database.

A view documents an error its shape does not show with @extend_schema(responses={code: ERROR}); the
ones documented by a view are kept as they are.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import permissions, serializers
from rest_framework.authentication import SessionAuthentication

CRUD_ACTIONS = {"list", "retrieve", "create", "update", "partial_update", "destroy", "metadata", None}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

DESCRIPTIONS = {
    "400": "The request is not valid: DRF's field errors (field name to messages), or an error with a code.",
    "401": "Authentication is missing where it is needed, or the token is not valid.",
    "403": "The caller's role does not allow this (or a session request lacks its CSRF token).",
    "404": "No such object among those the caller may see, or a page out of range.",
    "409": "The object's state does not allow this now (code invalid_state).",
    "413": "The request, or the file it uploads, is above the size limit (code too_large).",
    "429": "Too many requests; try again after Retry-After seconds.",
    "503": "The database is not reachable right now (code unavailable); try again after Retry-After seconds.",
}
RETRY_AFTER = {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again."}


class ErrorSerializer(serializers.Serializer):
    """The body of an error answer: config/api.py's for Agora's errors, DRF's for its own (detail only)."""

    code = serializers.CharField(
        required=False,
        help_text="What kind of error, for programs: not_found, permission_denied, invalid_state, validation_failed, "
        "too_large, unavailable... Absent from DRF's own answers (authentication, throttling, parsing, paging).",
    )
    detail = serializers.CharField(help_text="What went wrong, in a sentence a person can act on.")
    details = serializers.JSONField(required=False, help_text="More about it, e.g. each invalid input's problem.")


ERROR = ErrorSerializer

FIELD_ERRORS = ResolvedComponent(
    name="FieldErrors",
    type=ResolvedComponent.SCHEMA,
    object="FieldErrors",
    schema={
        "type": "object",
        "description": "DRF's validation errors: each field's messages (non_field_errors for the whole), or "
        "a nested field's own errors.",
        "additionalProperties": {
            "anyOf": [
                {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "object"}]}},
                {"type": "object"},
            ]
        },
    },
)


class AgoraAutoSchema(AutoSchema):
    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses: dict[str, Any] = operation["responses"]
        for code in self._error_codes(operation):
            responses.setdefault(code, self._error_response(code))
        for code, answer in responses.items():  # a view's own error answers get the same words
            if code in DESCRIPTIONS and not answer.get("description"):
                answer["description"] = DESCRIPTIONS[code]
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def get_auth(self) -> list[dict[str, Any]]:
        auths: list[dict[str, Any]] = super().get_auth()
        # No permission class at all (the token endpoint) is as open as AllowAny.
        if not self.view.get_permissions() and {} not in auths:
            auths.append({})
        return auths

    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer_field(field, direction, bypass_extensions)
        # DRF refuses an empty file ("The submitted file is empty.") unless the field allows it.
        if isinstance(field, serializers.FileField) and not field.allow_empty_file and direction == "request":
            schema["minLength"] = 1
        return schema

    def _get_filter_parameters(self) -> list[dict[str, Any]]:
        # django-filter and DRF's filters read a blank value as no filter.
        return [{**p, "allowEmptyValue": True} for p in super()._get_filter_parameters()]

    def _get_pagination_parameters(self) -> list[dict[str, Any]]:
        # DRF's paginator reads a blank page as the first one.
        return [{**p, "allowEmptyValue": True} for p in super()._get_pagination_parameters()]

    def _error_codes(self, operation: dict[str, Any]) -> list[str]:
        parameters = operation.get("parameters", [])
        unsafe = self.method in UNSAFE_METHODS
        action = getattr(self.view, "action", None)
        has_id = any(p["in"] == "path" for p in parameters)
        paging = {p["name"] for p in self._get_pagination_parameters()}  # a bad page is a 404, not a 400
        codes = ["429", "503"]
        if "requestBody" in operation or any(p["in"] == "query" and p["name"] not in paging for p in parameters):
            codes.append("400")
        if self.view.get_authenticators():
            codes.append("401")
        if unsafe and (self._checks_permissions() or self._uses_sessions()):
            codes.append("403")
        if has_id or (self._is_list_view() and self._get_paginator() is not None):
            codes.append("404")
        if unsafe and has_id and action not in CRUD_ACTIONS:
            codes.append("409")
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append("413")
        return codes

    def _checks_permissions(self) -> bool:
        return any(not isinstance(p, permissions.AllowAny) for p in self.view.get_permissions())

    def _uses_sessions(self) -> bool:
        return any(isinstance(a, SessionAuthentication) for a in self.view.get_authenticators())

    def _error_response(self, code: str) -> dict[str, Any]:
        error = self.resolve_serializer(ERROR, "response").ref
        if code == "400":
            self.registry.register_on_missing(FIELD_ERRORS)
            schema: dict[str, Any] = {"anyOf": [error, FIELD_ERRORS.ref]}
        else:
            schema = error
        content = {"application/json": {"schema": schema}}
        answer: dict[str, Any] = {"description": DESCRIPTIONS[code], "content": content}
        if code in ("429", "503"):
            answer["headers"] = {"Retry-After": RETRY_AFTER}
        return answer
