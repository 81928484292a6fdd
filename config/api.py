"""Maps Agora's errors to HTTP answers, in JSON, for the whole API."""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import AgoraError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, AgoraError):
        body: dict[str, Any] = {"code": exc.code, "detail": exc.message}
        if exc.details is not None:
            body["details"] = exc.details
        return Response(body, status=exc.http_status)
    # A lost database connection is left to DatabaseUnavailableMiddleware (503 for the API and the pages).
    return drf_exception_handler(exc, context)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 for a URL no route matches (an id with a dot, a typo): JSON under /api/, the page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "detail": f"There is nothing at {request.path}."}, status=404)
    return page_not_found(request, exception)
