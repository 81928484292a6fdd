"""The public catalogue: search with instant results, filters, service cards and service pages."""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from catalogue import selectors
from catalogue.models import Membership, Organization, ServiceVersion
from portal import selectors as portal_selectors
from portal.context import current_membership
from portal.htmx import is_htmx

PAGE_SIZE = 24


def catalogue_index(request: HttpRequest) -> HttpResponse:
    params = {name: request.GET.get(name, "").strip()[:200] for name in ("q", "category", "tag", "publisher")}
    services = portal_selectors.catalogue_services(
        user=request.user,
        query=params["q"],
        category=params["category"],
        tag=params["tag"],
        publisher=params["publisher"],
    )
    page = Paginator(services, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "params": params, "filtered": any(params.values())}
    # The search box asks for the results only; a plain GET (no JavaScript, or a reload) gets the page.
    if is_htmx(request, target="results"):
        response = render(request, "portal/catalogue/_results.html", context)
        # The address bar shows the search without its empty fields (?q=forms, not ?category=&tag=&q=forms).
        kept = {name: value for name, value in request.GET.items() if str(value).strip()}
        response["HX-Push-Url"] = request.path + (f"?{urlencode(kept)}" if kept else "")
    else:
        context["facets"] = portal_selectors.catalogue_facets()
        response = render(request, "portal/catalogue/index.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def service_detail(request: HttpRequest, slug: str) -> HttpResponse:
    service = selectors.with_latest_version(selectors.services_visible_to(request.user)).filter(slug=slug).first()
    if service is None:
        raise Http404("No such service")
    versions = list(selectors.versions_visible_to(request.user).filter(service=service))
    published = [v for v in versions if v.state == ServiceVersion.State.PUBLISHED]
    latest = published[0] if published else None
    membership = current_membership(request)
    can_subscribe = bool(
        membership is not None
        and membership.organization.kind == Organization.Kind.PUBLIC_ADMINISTRATION
        and membership.role in (Membership.Role.ADMIN, Membership.Role.EDITOR)
    )
    return render(
        request,
        "portal/catalogue/service.html",
        {
            "service": service,
            "versions": versions,
            "latest": latest,
            "inputs": sorted((latest.inputs_schema or {}).items()) if latest else [],
            "subscribers": portal_selectors.service_subscriber_count(service),
            "can_subscribe": can_subscribe,
            "membership": membership,
        },
    )
