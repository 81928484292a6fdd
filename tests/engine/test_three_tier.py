"""A three-tier service (web → app → database, a volume, a secret, ConnectsTo): deploy, open, upgrade, remove."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest

from crane import driver
from crane.models import Target
from orchestrator.models import Deployment, Step
from orchestrator.services import deployment_cancel, deployment_create, deployment_undeploy, deployment_upgrade
from tests.engine.conftest import WEB_TEMPLATE, drive, needs_swarm

pytestmark = [pytest.mark.docker, needs_swarm]
SETTLED = {Deployment.State.RUNNING, Deployment.State.FAILED}

HEALTH = """\
        healthcheck:
          test: [CMD-SHELL, "nc -w 1 127.0.0.1 8080 </dev/null"]
          interval: 1 s
          timeout: 1 s
          retries: 10
"""
THREE_TIER = f"""\
tosca_definitions_version: tosca_simple_yaml_1_3
imports: [agora/v1/profile.yaml]
topology_template:
  inputs:
    banner:
      type: string
      default: Ajuntament
    db_password:
      type: string
      metadata:
        secret: true
      constraints:
        - min_length: 10
  node_templates:
    web:
      type: agora.nodes.Container
      properties:
        image: agora/busybox:latest
        command:
          - sh
          - -c
          - >-
            mkdir -p /www && echo "$BANNER via $APP: $(nc -w 2 $APP 8080 </dev/null | tail -1)" > /www/index.html
            && exec httpd -f -p 8080 -h /www
        environment:
          BANNER: {{ get_input: banner }}
          APP: {{ get_attribute: [app, private_address] }}
        ports:
          - target: 8080
{HEALTH}      requirements:
        - connection: app
    app:
      type: agora.nodes.Container
      properties:
        image: agora/busybox:latest
        command:
          - sh
          - -c
          - >-
            while true; do
            ROWS=$(printf "GET /table HTTP/1.0\\r\\n\\r\\n" | nc -w 2 $DB 8080 | tail -1);
            SECRET=$(wc -c < /run/secrets/db_password);
            printf "HTTP/1.0 200 OK\\r\\n\\r\\napp sees $SECRET-byte secret, db $ROWS\\n" | nc -l -p 8080; done
        environment:
          DB: {{ get_attribute: [db, private_address] }}
{HEALTH}      requirements:
        - connection: db
        - secret: db_password
    db:
      type: agora.nodes.Container
      properties:
        image: agora/busybox:latest
        command: [sh, -c, "echo rows > /data/table && exec httpd -f -p 8080 -h /data"]
{HEALTH}      requirements:
        - volume:
            node: db_data
            relationship:
              type: agora.relationships.MountsVolume
              properties:
                location: /data
        - secret: db_password
    db_data:
      type: agora.nodes.Volume
    db_password:
      type: agora.nodes.Secret
      properties:
        value: {{ get_input: db_password }}
  outputs:
    url:
      value:
        concat:
          - "http://"
          - {{ get_attribute: [web, public_address] }}
          - ":"
          - {{ get_attribute: [web, public_port] }}
          - "/"
"""


def page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - our own deployment
        return str(answer.read().decode()).strip()


def test_three_tiers_deploy_in_order_answer_upgrade_and_leave_nothing(
    swarm: Target, queue_name: str, cleanup: list[str], settings: Any
) -> None:
    settings.AGORA_WAIT_HEALTHY_SECONDS = 90
    inputs = {"db_password": "0123456789ab"}
    deployment = deployment_create(template=THREE_TIER.encode(), filename="3t.yaml", inputs=inputs, target=swarm)
    cleanup.append(deployment.pk)
    deployment = drive(deployment, SETTLED, timeout=240)
    assert deployment.state == Deployment.State.RUNNING, deployment.error
    assert page(deployment.outputs["url"]) == "Ajuntament via app: app sees 12-byte secret, db rows"
    order = list(
        Step.objects.filter(deployment=deployment, kind="wait").order_by("finished_at").values_list("node", flat=True)
    )
    assert order == ["db", "app", "web"]

    deployment = deployment_upgrade(
        deployment=deployment, template=THREE_TIER.encode(), filename="3t.yaml", inputs={**inputs, "banner": "Comune"}
    )
    deployment = drive(deployment, SETTLED, timeout=240)
    assert deployment.state == Deployment.State.RUNNING, deployment.error
    assert page(deployment.outputs["url"]).startswith("Comune via app")
    rerun = set(
        Step.objects.filter(deployment=deployment, generation=deployment.generation, attempts__gt=0).values_list(
            "key", flat=True
        )
    )
    assert rerun == {"web.service", "web.wait"}

    deployment = drive(deployment_undeploy(deployment=deployment), {Deployment.State.REMOVED, Deployment.State.FAILED})
    assert deployment.state == Deployment.State.REMOVED, deployment.error
    assert driver.list_objects(swarm, deployment.pk).empty


def test_cancel_drops_waiting_steps_and_says_so(swarm: Target, queue_name: str, cleanup: list[str]) -> None:
    deployment = deployment_create(template=WEB_TEMPLATE.encode(), filename="web.yaml", inputs={}, target=swarm)
    cleanup.append(deployment.pk)
    deployment_cancel(deployment)
    deployment = drive(deployment, SETTLED)
    assert deployment.state == Deployment.State.FAILED
    assert "Cancelled" in deployment.error
    states = set(Step.objects.filter(deployment=deployment).values_list("state", flat=True))
    assert Step.State.CANCELLED in states and Step.State.RUNNING not in states
