"""Maps Agora's errors to HTTP answers, in JSON, for the whole API."""

from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import AgoraError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, AgoraError):
        body: dict[str, Any] = {"code": exc.code, "detail": exc.message}
        if exc.details is not None:
            body["details"] = exc.details
        return Response(body, status=exc.http_status)
    # Only a lost connection is "unavailable"; other database errors are bugs and must surface as such.
    if isinstance(exc, OperationalError | InterfaceError):
        return Response(
            {"code": "unavailable", "detail": "The database is not reachable right now; try again shortly."},
            status=503,
            headers={"Retry-After": "10"},
        )
    return drf_exception_handler(exc, context)
