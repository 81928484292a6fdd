"""What the portal needs to know about htmx requests."""

from __future__ import annotations

from django.http import HttpRequest


def is_htmx(request: HttpRequest, *, target: str | None = None) -> bool:
    """An htmx request (optionally aimed at the element with this id), not a history restore,
    which needs the whole page."""
    headers = request.headers
    if headers.get("HX-Request") != "true" or headers.get("HX-History-Restore-Request") == "true":
        return False
    return target is None or headers.get("HX-Target") == target
