"""Portal page tests: Django's test client signed in as the demo people, and a small HTML reader.

The HTML is read with Django's own parser (django.test.html), so a test can ask for the text of
one element (the row of line 5 of a template, a table cell) instead of searching the whole page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.test import Client
from django.test.html import Element, parse_html
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, reverse

from catalogue.models import Organization


def client_of(user: Any, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def act_for(client: Client, organization: Organization) -> None:
    """Picks the organization a person acts for, through the switcher as the header's form does."""
    response = client.post(reverse("portal:organization-switch"), {"organization": organization.pk, "next": "/"})
    assert response.status_code == 302


@pytest.fixture
def alice_client(alice: Any) -> Client:
    return client_of(alice)


@pytest.fixture
def bob_client(bob: Any) -> Client:
    return client_of(bob)


@pytest.fixture
def charlie_client(charlie: Any) -> Client:
    return client_of(charlie)


@pytest.fixture
def mallory_client(mallory: Any) -> Client:
    """Mallory acting for her own publisher, rival-soft."""
    client = client_of(mallory)
    act_for(client, Organization.objects.get(slug="rival-soft"))
    return client


def routes(urlpatterns: list[URLPattern | URLResolver]) -> dict[str, str]:
    """{name: pattern} of a URL module's pages, for batteries that must cover routes added later too."""
    return {p.name: str(p.pattern) for p in urlpatterns if isinstance(p, URLPattern) and p.name}


def queries_for(client: Client, url: str) -> int:
    """How many SQL queries one GET of the page takes."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def html_of(response: HttpResponseBase) -> Element:
    assert isinstance(response, HttpResponse), f"{response!r} has no HTML"
    return parse_html(response.content.decode())


def _walk(element: Element | str) -> Iterator[Element]:
    if isinstance(element, str):
        return
    yield element
    for child in element.children:
        yield from _walk(child)


def by_id(response: HttpResponseBase, element_id: str) -> Element:
    for element in _walk(html_of(response)):
        if dict(element.attributes).get("id") == element_id:
            return element
    raise AssertionError(f"no element with id {element_id!r} in the page")


def by_class(response: HttpResponseBase, css_class: str) -> list[Element]:
    return [e for e in _walk(html_of(response)) if css_class in (dict(e.attributes).get("class") or "").split()]


def text_of(element: Element | str) -> str:
    if isinstance(element, str):
        return element
    return " ".join(text_of(child) for child in element.children)
