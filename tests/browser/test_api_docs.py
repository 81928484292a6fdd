"""Swagger UI renders Agora's API offline, in Chromium, under the portal's Content-Security-Policy: the
harness fails the test on any blocked script or style and any file that does not load."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import FAILING_IMPACTS, Visits, axe_violations, describe

pytestmark = pytest.mark.django_db(transaction=True)

# Swagger UI's own markup and colours (third-party, not Agora's templates): its method badges and links are
# below 4.5:1 contrast and its operation headers nest buttons. Every other serious finding still fails.
SWAGGER_UI_OWN_FINDINGS = {"color-contrast", "nested-interactive"}


def test_swagger_ui_renders_the_operations_from_agora_s_own_files(
    page: Page, visits: Visits, screenshot: Callable[[str], Path]
) -> None:
    foreign: list[str] = []

    def refuse(route: Route) -> None:  # as on a machine without internet
        foreign.append(route.request.url)
        route.abort()

    page.route(re.compile(r"^https?://(?!localhost[:/]|127\.0\.0\.1[:/])"), refuse)
    page.goto("/api/docs/")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/services/").first).to_be_visible()
    assert page.locator(".opblock").count() > 40  # every operation of the schema, one block each
    screenshot("api-docs")
    failing = [
        v for v in axe_violations(page) if v["impact"] in FAILING_IMPACTS and v["id"] not in SWAGGER_UI_OWN_FINDINGS
    ]
    visits.checked.append("/api/docs/")
    assert not failing, describe(failing)
    assert foreign == []
