"""The catalogue pages: search, filters, service pages, and what every portal page promises
(escaping, sanitised Markdown, CSP, a constant number of queries)."""

from __future__ import annotations

import ast
import gettext
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse

from catalogue import services
from catalogue.models import Membership, Organization, Service, ServiceVersion
from tests.conftest import actor, upload
from tests.factories import ServiceFactory
from tests.portal.conftest import by_id, client_of, queries_for, text_of

pytestmark = pytest.mark.django_db

CATALOGUE = "/"


def publish(alice: Any, charlie: Any, service: Service, version: str = "1.0.0") -> ServiceVersion:
    draft = upload(alice, service, version)
    services.version_submit(actor=actor(alice), version=draft)
    return services.version_approve(actor=actor(charlie), version=draft)


def new_service(alice: Any, publisher: Organization, name: str, **fields: Any) -> Service:
    return services.service_create(actor=actor(alice), publisher=publisher, name=name, **fields)


def test_catalogue_shows_published_services_and_not_drafts(
    client: Client, alice: Any, publisher_org: Organization, published_version: ServiceVersion
) -> None:
    new_service(alice, publisher_org, "Unfinished Draft")
    page = client.get(CATALOGUE)
    assert page.status_code == 200
    results = text_of(by_id(page, "results"))
    assert "Citizen Forms" in results
    assert "Unfinished Draft" not in results
    assert "1 service found" in results
    assert "version 1.0.0" in results


def test_search_answers_the_results_alone_to_htmx_and_the_whole_page_otherwise(
    client: Client, alice: Any, charlie: Any, publisher_org: Organization, published_version: ServiceVersion
) -> None:
    publish(alice, charlie, new_service(alice, publisher_org, "Parking Sensors", summary="Free places in streets"))
    partial = client.get(CATALOGUE, {"q": "parking"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results")
    body = partial.content.decode()
    assert "<html" not in body
    assert "Parking Sensors" in body and "Citizen Forms" not in body
    assert "HX-Request" in partial["Vary"]
    tidy = client.get(CATALOGUE, {"q": "parking", "tag": ""}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results")
    assert tidy["HX-Push-Url"] == "/?q=parking"
    # Without JavaScript the same form is a plain GET that answers the whole page.
    whole = client.get(CATALOGUE, {"q": "parking"}).content.decode()
    assert "<html" in whole and "Parking Sensors" in whole and "Citizen Forms" not in whole
    # A history restore needs the whole page even from htmx.
    restored = client.get(CATALOGUE, {"q": "parking"}, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in restored.content.decode()


def test_filters_by_category_tag_and_publisher(
    client: Client, alice: Any, charlie: Any, mallory: Any, publisher_org: Organization, published_version: Any
) -> None:
    rival = Organization.objects.get(slug="rival-soft")
    publish(mallory, charlie, new_service(mallory, rival, "Open Data", category="data", tags=["catalogue"]))

    def names(**params: str) -> str:
        return text_of(by_id(client.get(CATALOGUE, params), "results"))

    assert "Open Data" in names(category="data") and "Citizen Forms" not in names(category="data")
    assert "Citizen Forms" in names(tag="forms") and "Open Data" not in names(tag="forms")
    assert "Open Data" in names(publisher="rival-soft") and "Citizen Forms" not in names(publisher="rival-soft")
    options = text_of(by_id(client.get(CATALOGUE), "filter-publisher"))
    assert "OpenCivic" in options and rival.name in options


def test_pagination_keeps_the_search(client: Client, alice: Any, publisher_org: Organization) -> None:
    ServiceFactory.create_batch(30, publisher=publisher_org, state=Service.State.PUBLISHED, summary="forms")
    first = client.get(CATALOGUE, {"q": "forms"})
    assert "30 services found" in first.content.decode()
    assert "?q=forms&amp;page=2" in first.content.decode()
    second = client.get(CATALOGUE, {"q": "forms", "page": "2"}).content.decode()
    assert "Page 2 of 2" in second


def test_names_are_escaped(client: Client, alice: Any, charlie: Any, publisher_org: Organization) -> None:
    evil = new_service(alice, publisher_org, "<script>alert(1)</script>", slug="evil", summary='"><img src=x>')
    publish(alice, charlie, evil)
    for url in (CATALOGUE, reverse("portal:service", args=["evil"])):
        body = client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert '"><img src=x>' not in body


def test_markdown_description_is_rendered_and_sanitised(
    client: Client, alice: Any, charlie: Any, publisher_org: Organization
) -> None:
    service = new_service(
        alice,
        publisher_org,
        "Markdown Service",
        description=(
            "# Title\n\nSome **bold** text and [a link](https://example.org).\n\n"
            "<script>alert('x')</script>\n\n<img src=x onerror=alert(1)>\n\n[bad](javascript:alert(1))"
        ),
    )
    publish(alice, charlie, service)
    body = client.get(reverse("portal:service", args=[service.slug])).content.decode()
    assert "<strong>bold</strong>" in body
    assert '<a href="https://example.org" rel="noopener noreferrer nofollow">a link</a>' in body
    assert "<h2>Title</h2>" in body  # the page's title is its only h1
    assert "alert('x')" not in body
    assert "onerror" not in body
    assert "javascript:" not in body


def test_service_page_shows_versions_inputs_publisher_and_subscribers(
    client: Client, alice: Any, charlie: Any, subscription: Any, published_version: ServiceVersion
) -> None:
    newer = upload(alice, published_version.service, "1.1.0")
    ServiceVersion.objects.filter(pk=newer.pk).update(changelog="Adds **dark mode**.")
    services.version_submit(actor=actor(alice), version=newer)
    services.version_approve(actor=actor(charlie), version=newer)
    page = client.get(reverse("portal:service", args=["citizen-forms"]))
    body = page.content.decode()
    assert "Version 1.1.0" in body and "Version 1.0.0" in body
    assert "<strong>dark mode</strong>" in body
    assert "OpenCivic" in body
    assert "1 administration" in body
    assert "replicas" in body and "between 1 and 5" in body


def test_draft_services_are_not_found_except_by_their_publisher(
    client: Client, alice: Any, mallory: Any, publisher_org: Organization
) -> None:
    new_service(alice, publisher_org, "Hidden Draft", slug="hidden")
    url = reverse("portal:service", args=["hidden"])
    assert client.get(url).status_code == 404
    assert client_of(mallory).get(url).status_code == 404
    assert client_of(alice).get(url).status_code == 200


def test_subscribe_button_depends_on_who_looks(
    client: Client, alice: Any, bob: Any, published_version: ServiceVersion
) -> None:
    url = reverse("portal:service", args=["citizen-forms"])
    subscribe = reverse("portal:subscribe", args=["citizen-forms"])
    assert "Log in to subscribe" in client.get(url).content.decode()
    assert subscribe in client_of(bob).get(url).content.decode()
    assert subscribe not in client_of(alice).get(url).content.decode()  # a publisher does not subscribe


def test_catalogue_queries_do_not_grow_with_the_services(bob: Any, publisher_org: Organization) -> None:
    client = client_of(bob)
    ServiceFactory.create_batch(3, publisher=publisher_org, state=Service.State.PUBLISHED, tags=["a"])
    few = queries_for(client, CATALOGUE)
    ServiceFactory.create_batch(40, publisher=publisher_org, state=Service.State.PUBLISHED, tags=["b", "c"])
    assert queries_for(client, CATALOGUE) == few
    assert queries_for(client, CATALOGUE + "?q=service&tag=b") <= few + 1


def test_service_page_queries_do_not_grow_with_versions(
    alice: Any, bob: Any, charlie: Any, published_version: ServiceVersion
) -> None:
    client = client_of(bob)
    url = reverse("portal:service", args=["citizen-forms"])
    few = queries_for(client, url)
    for number in range(1, 4):
        publish(alice, charlie, published_version.service, f"1.{number}.0")
    assert queries_for(client, url) == few


def test_pages_carry_a_content_security_policy_and_no_inline_script(client: Client, published_version: Any) -> None:
    for url in (CATALOGUE, reverse("portal:service", args=["citizen-forms"]), reverse("login")):
        response = client.get(url)
        policy = response["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        body = response.content.decode()
        assert not re.search(r'<script(?![^>]*(\bsrc=|type="application/json"))[^>]*>', body), "inline script"
        assert not re.search(r"\son[a-z]+\s*=", body), "inline event handler"
        assert "style=" not in body
        assert response["X-Frame-Options"] == "DENY"


def test_login_and_logout(client: Client, bob: Any) -> None:
    from tests.factories import DEMO_PASSWORD

    assert client.get("/accounts/login/").status_code == 200
    answer = client.post("/accounts/login/", {"username": "bob", "password": DEMO_PASSWORD})
    assert answer.status_code == 302 and answer["Location"] == "/"
    assert "Log out" in client.get(CATALOGUE).content.decode()
    assert client.post("/accounts/logout/").status_code == 302
    assert "Log in" in client.get(CATALOGUE).content.decode()


def test_organization_switcher(mallory: Any) -> None:
    client = client_of(mallory)
    girona = Organization.objects.get(slug="girona")
    switched = client.post(reverse("portal:organization-switch"), {"organization": girona.pk, "next": "/"})
    assert switched.status_code == 302
    page = client.get(CATALOGUE)
    assert reverse("portal:subscriptions") in page.content.decode()  # acting for a public administration
    foreign = Organization.objects.create(name="Elsewhere", slug="elsewhere", kind=Organization.Kind.PUBLISHER)
    switch = reverse("portal:organization-switch")
    refused = client.post(switch, {"organization": foreign.pk, "next": "https://evil.example/"}, follow=True)
    assert "You are not a member of that organization." in refused.content.decode()
    assert refused.redirect_chain[-1][0] == "/"  # never sent to another site


def test_pages_speak_spanish_when_asked(client: Client, bob: Any, subscription: Any) -> None:
    client.post("/i18n/setlang/", {"language": "es", "next": "/"})
    body = client.get(CATALOGUE).content.decode()
    assert '<html lang="es">' in body
    assert "Catálogo de servicios" in body and "1 servicio encontrado" in body and "Lo usa 1 administración" in body
    service = client.get(reverse("portal:service", args=["citizen-forms"])).content.decode()
    assert "Acerca de este servicio" in service and "entre 1 y 5" in service
    signed_in = client_of(bob)
    signed_in.post("/i18n/setlang/", {"language": "es", "next": "/"})
    deployment = signed_in.get(reverse("portal:deployment", args=[subscription.deployment_id])).content.decode()
    assert "0 de 4 pasos hechos" in deployment and "Cronología" in deployment and "Pendiente" in deployment
    mine = signed_in.get(reverse("portal:subscriptions")).content.decode()
    assert "Mis servicios" in mine and "Desconocido" in mine


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "ALLOWED_HOSTS", "HTTPS", "SECURE_COOKIES")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_the_deploy_check_and_the_embedded_default_keeps_http() -> None:
    production = _manage(
        "check", "--deploy", "--fail-level", "WARNING", DEBUG="0", SECRET_KEY="k" * 20 + "-" + "x7Q" * 10,
        ALLOWED_HOSTS="agora.example",
    )  # fmt: skip
    assert production.returncode == 0, production.stdout + production.stderr
    show = "from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, "
    show += "s.SECURE_HSTS_SECONDS)"
    embedded = _manage("shell", "-v", "0", "-c", show)
    assert embedded.stdout.split() == ["False", "False", "0"], embedded.stderr
    behind_tls = _manage("shell", "-v", "0", "-c", show, ALLOWED_HOSTS="agora.example")
    assert behind_tls.stdout.split() == ["True", "True", "31536000"], behind_tls.stderr


def test_errors_are_pages_a_person_can_act_on(client: Client) -> None:
    missing = client.get("/services/no-such-service/")
    assert missing.status_code == 404
    assert "Page not found" in missing.content.decode() and "Go to the catalogue" in missing.content.decode()
    refused = Client(enforce_csrf_checks=True).post("/i18n/setlang/", {"language": "es"})
    assert refused.status_code == 403
    assert "Nothing was changed" in refused.content.decode()
    # The server error page needs neither a request nor the database.
    assert "Something went wrong" in render_to_string("500.html")


def _po_entries(text: str) -> list[dict[str, str]]:
    """msgid, msgid_plural, msgstr and msgstr[n] of each entry of a .po file, continuation lines joined."""
    entries: list[dict[str, str]] = []
    for block in text.split("\n\n"):
        entry: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("#"):
                entry.setdefault("flags", "")
                if line.startswith("#,"):
                    entry["flags"] += line[2:]
                continue
            if line.startswith('"'):
                entry[key] += ast.literal_eval(line)
                continue
            key, _, value = line.partition(" ")
            entry[key] = ast.literal_eval(value)
        if entry.get("msgid"):
            entries.append(entry)
    return entries


def test_the_spanish_catalogue_is_complete_and_compiled() -> None:
    folder = settings.BASE_DIR / "locale" / "es" / "LC_MESSAGES"
    entries = _po_entries((folder / "django.po").read_text())
    assert len(entries) > 400
    assert [e["msgid"] for e in entries if "fuzzy" in e.get("flags", "")] == []
    assert [e["msgid"] for e in entries if not (e.get("msgstr") or e.get("msgstr[0]"))] == []
    with (folder / "django.mo").open("rb") as compiled:
        catalogue = gettext.GNUTranslations(compiled)
    assert catalogue.gettext("Catalogue") == "Catálogo"
    stale = [e["msgid"] for e in entries if "msgstr" in e and catalogue.gettext(e["msgid"]) != e["msgstr"]]
    assert stale == [], "django.mo is older than django.po: run `manage.py compilemessages -l es`"


def test_a_person_removed_from_the_organization_they_acted_for_acts_for_another(mallory: Any) -> None:
    client = client_of(mallory)
    girona = Organization.objects.get(slug="girona")
    client.post(reverse("portal:organization-switch"), {"organization": girona.pk})
    assert reverse("portal:subscriptions") in client.get(CATALOGUE).content.decode()  # a public administration
    Membership.objects.filter(user=mallory, organization=girona).delete()
    page = client.get(CATALOGUE).content.decode()
    assert "/publish/" in page and reverse("portal:subscriptions") not in page  # now acting for rival-soft
    assert client.get(reverse("portal:subscriptions")).status_code == 404
