"""The browser harness catches what it is there to catch: accessibility violations and blocked scripts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Route

from tests.browser.conftest import Visits

POLICY = "default-src 'self'; script-src 'self'; style-src 'self'"
HEAD = '<html lang="en"><head><title>{0}</title></head><body><main><h1>{0}</h1>'


def serve(page: Page, path: str, body: str) -> None:
    """Answers `path` with this HTML under the portal's kind of Content-Security-Policy."""

    def answer(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", headers={"Content-Security-Policy": POLICY}, body=body)

    page.route(f"**{path}", answer)


def test_axe_fails_a_page_with_serious_violations_and_says_which(page: Page, axe: Callable[[], None]) -> None:
    serve(page, "/broken/", "<html><body><img src='/nothing.png'><p>No title, no language.</p></body></html>")
    page.route("**/nothing.png", lambda route: route.fulfill(status=200, content_type="image/png", body=b""))
    page.goto("/broken/")
    with pytest.raises(AssertionError) as failure:
        axe()
    message = str(failure.value)
    assert "accessibility violations on /broken/" in message
    assert "image-alt (critical)" in message and "at img" in message
    assert "html-has-lang (serious)" in message


def test_axe_passes_a_page_without_them(page: Page, axe: Callable[[], None]) -> None:
    serve(page, "/fine/", HEAD.format("Fine") + "</main></body></html>")
    page.goto("/fine/")
    axe()


def test_an_inline_script_blocked_by_the_policy_is_reported(
    page: Page, axe: Callable[[], None], visits: Visits
) -> None:
    serve(page, "/inline/", HEAD.format("Inline") + "<script>document.title = 'ran'</script></main></body></html>")
    page.goto("/inline/")
    axe()  # axe itself runs despite the policy: it is evaluated, not injected
    assert page.title() == "Inline"
    assert any("Content Security Policy" in error for error in visits.console_errors)
    visits.console_errors.clear()  # reported, as the journeys' teardown would fail on it
