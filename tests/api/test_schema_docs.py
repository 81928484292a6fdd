"""/api/docs/ works on a machine without internet: Swagger UI comes from Agora's own static files, under the
portal's Content-Security-Policy, with no inline script or style."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from django.core.management import call_command
from rest_framework.test import APIClient


class _Resources(HTMLParser):
    """The scripts and stylesheets a page loads, and any inline script or style it carries."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append(found["src"] or "")
        elif tag == "script" or tag == "style":
            self._open = tag
        elif tag == "link" and found.get("rel") in ("stylesheet", "icon"):
            self.urls.append(found.get("href") or "")
        if any(name.startswith("on") for name in found) or "style" in found:
            self.inline.append(f"<{tag} {found}>")

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            self.inline.append(f"<{self._open}>{data.strip()[:60]}")

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def _docs_page() -> tuple[Any, _Resources]:
    answer = APIClient().get("/api/docs/")
    assert answer.status_code == 200
    resources = _Resources()
    resources.feed(answer.content.decode())
    return answer, resources


def test_the_docs_page_loads_only_agora_s_own_scripts_and_styles() -> None:
    _, page = _docs_page()
    assert len(page.urls) >= 4, page.urls  # Swagger UI's CSS, its two scripts and the page's own script
    # Same origin: a path on this host, never another host (https://cdn..., or a protocol-relative //cdn...).
    foreign = [url for url in page.urls if not url.startswith("/") or url.startswith("//")]
    assert foreign == []
    assert page.inline == []


def test_the_docs_page_is_under_the_portal_s_content_security_policy() -> None:
    answer, _ = _docs_page()
    policy = answer.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_the_docs_page_s_script_sets_swagger_ui_up_on_agora_s_schema() -> None:
    _, page = _docs_page()
    own = [url for url in page.urls if url.startswith("/api/docs/")]
    assert len(own) == 1, page.urls
    answer = APIClient().get(own[0])
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/javascript")
    script = answer.content.decode()
    assert "SwaggerUIBundle(" in script and '"/api/schema/"' in script


def test_the_static_files_the_docs_page_references_are_served(settings: Any, tmp_path: Path) -> None:
    # As `make run` serves them: collected into STATIC_ROOT, served by WhiteNoise (not Django's finders).
    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", "--noinput", verbosity=0)
    _, page = _docs_page()
    static = [url for url in page.urls if url.startswith("/static/")]
    assert len(static) >= 3, page.urls
    client = APIClient()  # a new client: WhiteNoise indexes STATIC_ROOT when its middleware starts
    for url in static:
        answer = client.get(url)
        assert answer.status_code == 200, url
        body = answer.getvalue()
        assert body == (settings.STATIC_ROOT / url.removeprefix("/static/")).read_bytes(), url
