"""A publisher uploads a broken template, sees the error at its line, fixes it and submits it; an operator
reviews it and approves it, and the service appears in the catalogue. In Chromium, as people do it."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import FilePayload, Page, expect

from catalogue import services
from catalogue.models import Service, ServiceVersion
from crane.models import Target
from monitoring.models import TargetHealth
from orchestrator.models import Deployment
from tests.conftest import DOCKER_TEMPLATE, INVALID_TEMPLATE

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(transactional_db: None) -> None:
    call_command("seed_demo", verbosity=0)


def test_a_publisher_fixes_a_broken_template_at_its_line_and_submits_it(
    demo: None, page: Page, login: Callable[[str, str], None], seen: Callable[[str], None]
) -> None:
    login("alice", "agora-demo-alice")
    page.get_by_role("link", name="Publish").click()
    seen("my-services")
    expect(page.get_by_role("link", name="Citizen Forms")).to_be_visible()

    page.get_by_role("link", name="New service").click()
    seen("new-service")
    page.get_by_role("textbox", name="Name", exact=True).fill("Noise Maps")
    page.get_by_label("Summary").fill("Noise levels of the city, street by street")
    page.get_by_label("Tags").fill("noise, environment")
    page.get_by_role("button", name="Create the service").click()
    seen("upload-form")

    page.get_by_role("textbox", name="Version", exact=True).fill("1.0.0")
    page.get_by_label("Template file").set_input_files(
        files=FilePayload(name="noise.yaml", mimeType="application/x-yaml", buffer=INVALID_TEMPLATE.encode())
    )
    page.get_by_role("button", name="Upload and check").click()
    seen("invalid-upload")
    expect(page.get_by_role("alert")).to_contain_text("nothing was stored")
    # Line 5 (`type: tosca.nodes.DoesNotExist`) carries the message, right under it.
    expect(page.locator("#L5 .source-problem")).to_contain_text("is not defined")
    expect(page.locator("#L4 .source-problem")).to_have_count(0)
    assert not ServiceVersion.objects.filter(service__slug="noise-maps").exists()

    # The text came back in the box: fix it there and upload again.
    box = page.get_by_label("Or paste the template (YAML)")
    expect(box).to_have_value(re.compile("tosca.nodes.DoesNotExist"))
    box.fill(DOCKER_TEMPLATE)
    page.get_by_role("button", name="Upload and check").click()
    seen("draft-version")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Noise Maps, version 1.0.0")
    expect(page.get_by_text("No problems were found.")).to_be_visible()

    page.get_by_role("button", name="Submit for review").click()
    seen("submitted")
    expect(page.get_by_role("status").first).to_contain_text("submitted")
    version = ServiceVersion.objects.get(service__slug="noise-maps")
    assert version.state == ServiceVersion.State.SUBMITTED


def test_an_operator_approves_a_submitted_version_and_it_enters_the_catalogue(
    demo: None, page: Page, login: Callable[[str, str], None], seen: Callable[[str], None], visit: Any
) -> None:
    alice = services.Actor(user=User.objects.get(username="alice"))
    noise = services.service_create(
        actor=alice, publisher=Service.objects.get(slug="citizen-forms").publisher, name="Noise Maps"
    )
    version = services.version_upload(
        actor=alice, service=noise, version="1.0.0", filename="noise.yaml", data=DOCKER_TEMPLATE.encode()
    )
    services.version_submit(actor=alice, version=version)

    login("charlie", "agora-demo-charlie")
    page.get_by_role("link", name="Operate").click()
    seen("approval-queue")
    page.get_by_role("link", name="Noise Maps 1.0.0").click()
    seen("review")
    expect(page.locator(".plan-levels")).to_contain_text("Level 1 (2 steps in parallel)")
    expect(page.locator("#L1")).to_contain_text("tosca_definitions_version")

    page.get_by_role("button", name="Approve and publish").click()
    seen("approved")
    expect(page.get_by_role("status").first).to_contain_text("Noise Maps 1.0.0 is published")
    expect(page.get_by_text("No version waits for review.")).to_be_visible()

    # The other operator pages, with something in them: a cloud with its health, a failed deployment.
    cloud = Target.objects.create(name="eu-west", provider="OpenStack", public_host="127.0.0.1", endpoint="unix:///x")
    now = timezone.now()
    TargetHealth.objects.bulk_create(
        TargetHealth(target=cloud, time=now - dt.timedelta(minutes=m), reachable=m != 2, nodes_ready=2, error="")
        for m in range(5)
    )
    failed = Deployment.objects.create(
        name="barcelona/forms", owner="barcelona", target=cloud, template=b"", template_sha256="0" * 64, state="failed"
    )
    visit("/operate/clouds/", "clouds")
    expect(page.locator("table.health-timeline tbody tr")).to_have_count(5)
    visit("/operate/deployments/?state=failed", "deployments")
    page.get_by_role("link", name=failed.pk).click()
    seen("a-deployment")
    visit("/operate/audit/?action=version.", "audit-trail")
    expect(page.locator("table.audit")).to_contain_text("version.published")

    page.get_by_role("link", name="Catalogue").first.click()
    seen("catalogue")
    expect(page.get_by_role("link", name="Noise Maps")).to_be_visible()
