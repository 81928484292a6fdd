"""Refuses oversized requests before Django reads their body."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit: int = settings.AGORA_MAX_REQUEST_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"code": "bad_request", "detail": "Content-Length is not a number."}, status=400)
        if length > limit:
            return JsonResponse(
                {
                    "code": "too_large",
                    "detail": f"The request has {length} bytes; the limit is {limit} bytes.",
                },
                status=413,
            )
        return self.get_response(request)
