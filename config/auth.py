"""Guessing passwords is slow: the login page and the API's token endpoint share one lockout.

django-axes counts failed logins in the database (so every worker process sees them) by username
and by address, and locks either out for a cool-off after AXES_FAILURE_LIMIT failures; the API's
throttles (config/throttling.py) add a per-address rate on top. A locked-out person reads when to
try again, with `Retry-After`, as JSON on the API and as a page elsewhere.
"""

from __future__ import annotations

import math
from typing import Any

from axes.helpers import get_cool_off  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    cool_off = get_cool_off(request)
    seconds = max(1, math.ceil(cool_off.total_seconds())) if cool_off else 3600
    minutes = max(1, math.ceil(seconds / 60))
    detail = _("Too many failed logins for this account or from this address. Try again in %(minutes)d minutes.") % {
        "minutes": minutes
    }
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"code": "locked_out", "detail": detail}, status=429)
    else:
        response = render(request, "registration/locked_out.html", {"detail": detail}, status=429)
    response["Retry-After"] = str(seconds)
    return response
