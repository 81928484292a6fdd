"""A subscriber finds a service, subscribes, watches its steps complete, opens it, reads its chart and logs,
and unsubscribes: in Chromium, against real Redis, Docker (a swarm target of the test's own) and the
monitoring collector. The deployment's steps are worked in the test's thread (`drive`, as `manage.py
worker` would) while the browser polls the live server."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from playwright.sync_api import Page, expect

from catalogue import services
from catalogue.models import Organization, Subscription
from crane.models import Target
from orchestrator.models import Deployment
from tests.crane.conftest import make_target
from tests.engine.conftest import drive, needs_swarm

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.docker, needs_swarm]

MARKER = f"journey-{uuid.uuid4().hex[:8]}"
JOURNEY_TEMPLATE = f"""\
tosca_definitions_version: tosca_simple_yaml_1_3
description: A notice board for a city's journeys.
imports: [agora/v1/profile.yaml]
topology_template:
  inputs:
    title:
      type: string
      description: The board's title.
      default: Journey board
  node_templates:
    web:
      type: agora.nodes.Container
      properties:
        image: agora/busybox:latest
        command:
          - sh
          - -c
          - >-
            mkdir -p /www && echo "<h1>$TITLE</h1>" > /www/index.html &&
            echo "{MARKER} board ready" && exec httpd -f -v -p 8080 -h /www
        environment:
          TITLE: {{ get_input: title }}
        ports:
          - target: 8080
        cpu_limit: 0.2
        mem_limit: 32 MB
        healthcheck:
          test: [CMD-SHELL, "nc -w 1 127.0.0.1 8080 </dev/null"]
          interval: 1 s
          timeout: 1 s
          retries: 5
  outputs:
    url:
      description: The board.
      value:
        concat:
          - "http://"
          - {{ get_attribute: [web, public_address] }}
          - ":"
          - {{ get_attribute: [web, public_port] }}
          - "/"
"""


@pytest.fixture
def board(transactional_db: None) -> None:
    """The demo people, and a published service whose container prints a known line."""
    call_command("seed_demo", verbosity=0)
    alice = services.Actor(user=User.objects.get(username="alice"))
    service = services.service_create(
        actor=alice,
        publisher=Organization.objects.get(slug="opencivic"),
        name="Journey Board",
        summary="A notice board for journeys",
        tags=["mobility"],
    )
    version = services.version_upload(
        actor=alice, service=service, version="1.0.0", filename="board.yaml", data=JOURNEY_TEMPLATE.encode()
    )
    services.version_submit(actor=alice, version=version)
    services.version_approve(actor=services.Actor(user=User.objects.get(username="charlie")), version=version)


@pytest.fixture
def cloud(transactional_db: None) -> Target:
    return make_target(Target.Mode.SWARM)


def test_a_subscriber_finds_subscribes_uses_and_leaves_a_service(
    board: None,
    cloud: Target,
    queue_name: str,
    cleanup: list[str],
    page: Page,
    login: Callable[[str, str], None],
    seen: Callable[[str], None],
) -> None:
    login("bob", "agora-demo-bob")  # lands on the catalogue
    page.get_by_label("Search services").fill("journey")
    expect(page.get_by_role("link", name="Journey Board")).to_be_visible()
    expect(page.get_by_role("link", name="Citizen Forms")).to_have_count(0)
    page.get_by_role("link", name="Journey Board").click()
    seen("service-page")

    page.get_by_role("link", name="Subscribe to version 1.0.0").click()
    seen("subscribe-form")
    page.get_by_label("Name of your instance").fill("board")
    page.get_by_label("Cloud").select_option(cloud.name)
    page.get_by_role("button", name="Subscribe", exact=True).click()
    seen("deployment-started")
    subscription = Subscription.objects.get(name="board", subscriber__slug="barcelona")
    deployment = subscription.deployment
    assert deployment is not None
    cleanup.append(deployment.pk)
    expect(page.locator("#deployment-live")).to_contain_text("steps done")

    # The steps are worked here; the page follows them by itself (htmx polls while the deployment is busy).
    drive(deployment, {Deployment.State.RUNNING, Deployment.State.FAILED})
    assert deployment.state == Deployment.State.RUNNING, deployment.error
    live = page.locator("#deployment-live")
    expect(live).to_contain_text("Running", timeout=20_000)
    total = deployment.steps.filter(generation=deployment.generation).count()
    expect(live).to_contain_text(f"{total} of {total} steps done")
    seen("deployment-running")

    url = deployment.outputs["url"]
    expect(live.get_by_role("link", name=url)).to_be_visible()
    service_tab = page.context.new_page()  # the service's own page, not Agora's: not held to Agora's checks
    service_tab.goto(url)
    expect(service_tab.get_by_role("heading", level=1)).to_have_text("Journey board")
    service_tab.close()

    # Two rounds of the collector: metrics (CPU needs two readings) and the container's log read to its end.
    call_command("monitor", "--once", "--target", cloud.name, verbosity=0)
    page.wait_for_timeout(1500)
    call_command("monitor", "--once", "--target", cloud.name, verbosity=0)

    page.get_by_role("link", name="Health, charts, logs and alerts of this instance").click()
    seen("subscription")
    expect(page.locator("#charts")).to_contain_text("Now: CPU")  # the latest reading, in words
    expect(page.locator('.chart[data-chart="memory"] canvas').first).to_be_visible()
    page.get_by_label("Search", exact=True).fill(MARKER)
    lines = page.locator("#log-lines")
    expect(lines).to_contain_text("1 line shown.")  # the search's answer, no longer every line
    expect(lines).to_contain_text(f"{MARKER} board ready")
    expect(lines.locator("mark").first).to_have_text(MARKER)
    seen("logs-found")

    page.get_by_role("link", name="Unsubscribe").click()
    seen("unsubscribe")
    page.get_by_role("button", name="Yes, unsubscribe and remove the instance").click()
    seen("unsubscribed")
    drive(deployment, {Deployment.State.REMOVED, Deployment.State.FAILED})
    assert deployment.state == Deployment.State.REMOVED, deployment.error
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.CANCELLED
    expect(page.locator("body")).to_contain_text("Removed", timeout=20_000)
