"""Maps Agora's errors to HTTP answers, in JSON, for the whole API."""

from typing import Any

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
