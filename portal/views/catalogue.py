"""The public catalogue: search, filters, service pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def catalogue_index(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/catalogue/index.html", {})
