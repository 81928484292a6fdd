"""Refuses oversized requests before Django reads their body; answers 503 while the database is down."""

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from orchestrator.limits import request_limit, template_limits
from orchestrator.tosca.model import human_size

log = logging.getLogger(__name__)


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = request_limit()
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"code": "bad_request", "detail": "Content-Length is not a number."}, status=400)
        if length > limit:
            # Most large requests are uploads: say the template limit too, so the person knows what fits.
            files = human_size(template_limits().max_bytes)
            return JsonResponse(
                {
                    "code": "too_large",
                    "detail": f"The request is {human_size(length)}; Agora accepts requests up to "
                    f"{human_size(limit)} and templates and CSARs up to {files}.",
                },
                status=413,
            )
        return self.get_response(request)


class NulCharacterMiddleware:
    """A NUL character in the path or the query is a 400: PostgreSQL text cannot hold one (a lookup or
    filter with it raised DataError, a 500), and no name, id or search of Agora's contains one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.GET.items()):
            detail = "The address holds a NUL character (%00), which no name, id or search contains."
            if request.path.startswith("/api/"):
                return JsonResponse({"code": "bad_request", "detail": detail}, status=400)
            return HttpResponse(detail, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """A lost database connection answers 503 with a sentence, never a traceback: JSON under /api/, a short
    page elsewhere. Other database errors are bugs and surface as such."""

    RETRY_AFTER_SECONDS = "10"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.error("Database unavailable while serving %s: %s", request.path, exception)
        message = "The database is not reachable right now; try again shortly."
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse({"code": "unavailable", "detail": message}, status=503)
        else:
            response = HttpResponse(
                f"<!doctype html><title>Agora is unavailable</title><h1>Agora is unavailable</h1><p>{message}</p>",
                status=503,
            )
        response["Retry-After"] = self.RETRY_AFTER_SECONDS
        return response
