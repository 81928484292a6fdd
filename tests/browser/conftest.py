"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

Every page a test reaches is checked by axe-core (serious and critical violations fail the test)
and photographed under artifacts/screenshots/. The page's Content Security Policy stays on for the
whole journey, so a blocked inline script or style shows up as a failure too: axe is evaluated
through the DevTools protocol (page.evaluate), which CSP does not govern, instead of being injected
as a <script> tag (which CSP rightly blocks) or by bypassing CSP for the whole context (which
would hide the very violations these tests should catch).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Response, sync_playwright

# The engine's fixtures, for journeys that deploy: a queue of the test's own, and Docker cleanup.
from tests.engine.conftest import cleanup, queue_name  # noqa: F401

CHROMIUM = Path(os.environ.get("AGORA_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
FAILING_IMPACTS = ("serious", "critical")
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright for one test module at a time.

    Its sync API keeps an event loop running in this thread, and Django's ORM refuses to run under a
    running loop unless told it is safe. It is (the loop is Playwright's and never touches the database),
    but only while the loop lives: so the loop and the permission last one module, never the session,
    and no other test of this process (nor a subprocess it starts) runs with either.
    """
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; `scripts/bootstrap.sh test` installs Debian's chromium")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as driver:
            yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # launch() gives each run a fresh temporary user-data directory of its own and removes it at close;
    # executable_path keeps Playwright from ever looking for (or downloading) a browser of its own.
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Visits:
    """What the page loaded and what axe checked, so a test cannot reach a page that goes unchecked."""

    loaded: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    shots: int = 0


def _slug(text: str) -> str:
    return re.sub(r"[^\w-]+", "-", text).strip("-")


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url) or "/"


@pytest.fixture
def visits() -> Visits:
    return Visits()


@pytest.fixture
def page(browser: Browser, live_server: Any, visits: Visits) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server.url, locale="en-GB", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("load", lambda p: visits.loaded.append(_path(p.url)))
    page.on("console", lambda m: _keep_error(m, visits))
    page.on("pageerror", lambda exc: visits.console_errors.append(f"uncaught: {exc}"))
    page.on("response", lambda r: _keep_failed(r, visits))
    yield page
    context.close()
    unchecked = [u for u in dict.fromkeys(visits.loaded) if u not in visits.checked]
    assert not unchecked, f"pages loaded but never checked with axe: {unchecked}"
    assert not visits.console_errors, "the browser reported errors:\n" + "\n".join(visits.console_errors)


def _keep_error(message: ConsoleMessage, visits: Visits) -> None:
    # A CSP violation is reported only on the console; so are script errors. Failed loads are kept with
    # their address by _keep_failed instead.
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        visits.console_errors.append(message.text)


def _keep_failed(response: Response, visits: Visits) -> None:
    """A stylesheet, script or image that does not load; pages a test asks for are checked by the test."""
    failed = response.status >= 400 and response.request.resource_type not in ("document", "fetch", "xhr")
    if failed and not response.url.endswith("/favicon.ico"):
        visits.console_errors.append(f"{response.request.method} {_path(response.url)}: {response.status}")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Runs axe-core on the page as it is now and returns its violations."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_JS.read_text())
    violations: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"][:5]:
            lines.append(f"    at {' '.join(node['target'])}: {node.get('failureSummary', '').splitlines()[-1:]}")
    return "\n".join(lines)


@pytest.fixture
def axe(page: Page, visits: Visits) -> Callable[[], None]:
    """Checks the current page; serious or critical violations fail the test with a readable list."""

    def check() -> None:
        page.wait_for_load_state("load")
        failing = [v for v in axe_violations(page) if v["impact"] in FAILING_IMPACTS]
        visits.checked.append(_path(page.url))
        assert not failing, f"accessibility violations on {_path(page.url)}:\n{describe(failing)}"

    return check


@pytest.fixture
def screenshot(page: Page, visits: Visits, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """Saves a full-page PNG under artifacts/screenshots/, named after the test and the step."""

    def shoot(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        visits.shots += 1
        path = SCREENSHOTS / f"{_slug(request.node.name)}-{visits.shots:02d}-{_slug(name)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shoot


@pytest.fixture
def seen(axe: Callable[[], None], screenshot: Callable[[str], Path]) -> Callable[[str], None]:
    """After every navigation: axe the page, then photograph it."""

    def check(name: str) -> None:
        screenshot(name)
        axe()

    return check


@pytest.fixture
def visit(page: Page, seen: Callable[[str], None]) -> Callable[[str, str], Page]:
    def go(path: str, name: str) -> Page:
        response = page.goto(path)
        assert response is not None and response.ok, f"GET {path} answered {response and response.status}"
        seen(name)
        return page

    return go


@pytest.fixture
def login(page: Page, seen: Callable[[str], None]) -> Callable[[str, str], None]:
    """Signs in through the login form, as a person would."""

    def sign_in(username: str, password: str) -> None:
        page.goto("/accounts/login/")
        seen(f"login-{username}")
        page.get_by_label(re.compile("user ?name", re.I)).fill(username)
        page.get_by_label(re.compile("password", re.I)).fill(password)
        page.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()
        page.wait_for_load_state("load")
        assert "/accounts/login/" not in page.url, f"{username} could not sign in"
        seen(f"signed-in-{username}")

    return sign_in
