"""Classic TOSCA: software components HostedOn a Compute, installed by their Standard lifecycle scripts."""

from __future__ import annotations

from typing import Any

import pytest

from crane import driver
from crane.models import Target
from orchestrator.models import Deployment, Step
from orchestrator.services import deployment_create
from tests.engine.conftest import drive, needs_swarm
from tests.orchestrator.conftest import make_zip

pytestmark = [pytest.mark.docker, needs_swarm]

SERVICE = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    context_root:
      type: string
      default: /portal
  node_templates:
    portal:
      type: tosca.nodes.WebApplication
      properties:
        context_root: { get_input: context_root }
      requirements:
        - host: web_server
      interfaces:
        Standard:
          create: scripts/portal_install.sh
          configure:
            implementation: scripts/portal_configure.sh
            inputs:
              ROOT: { get_input: context_root }
    web_server:
      type: tosca.nodes.WebServer
      requirements:
        - host: server
      interfaces:
        Standard:
          create: scripts/server_install.sh
          start: scripts/server_start.sh
    server:
      type: tosca.nodes.Compute
"""
SCRIPTS = {
    "scripts/server_install.sh": "set -e\nmkdir -p /srv/www\necho installed >> /srv/log\n",
    "scripts/server_start.sh": "set -e\necho started >> /srv/log\n",
    "scripts/portal_install.sh": "set -e\nmkdir -p /srv/www/portal\necho portal-installed >> /srv/log\n",
    "scripts/portal_configure.sh": 'set -e\necho "root=$ROOT" > /srv/www/portal/config\necho configured >> /srv/log\n',
}


def test_scripts_run_in_order_inside_the_compute_container_with_their_inputs(
    swarm: Target, queue_name: str, cleanup: list[str], settings: Any
) -> None:
    settings.AGORA_WAIT_HEALTHY_SECONDS = 60
    csar = make_zip({"service.yaml": SERVICE, **SCRIPTS})
    deployment = deployment_create(
        template=csar, filename="portal.csar", inputs={"context_root": "/city"}, target=swarm
    )
    cleanup.append(deployment.pk)
    deployment = drive(deployment, {Deployment.State.RUNNING, Deployment.State.FAILED})
    assert deployment.state == Deployment.State.RUNNING, deployment.error
    code, log = driver.exec_in_node(swarm, deployment.pk, "server", b"cat /srv/log /srv/www/portal/config\n")
    assert code == 0
    assert log.split() == ["installed", "started", "portal-installed", "configured", "root=/city"]
    operations = Step.objects.filter(deployment=deployment, kind="operation").order_by("finished_at")
    assert [s.key for s in operations] == ["web_server.create", "web_server.start", "portal.create", "portal.configure"]


def test_a_failing_script_fails_its_step_with_the_scripts_last_lines(
    swarm: Target, queue_name: str, cleanup: list[str], settings: Any
) -> None:
    settings.AGORA_WAIT_HEALTHY_SECONDS = 60
    scripts = {**SCRIPTS, "scripts/server_start.sh": "echo cannot bind port 80 >&2\nexit 3\n"}
    deployment = deployment_create(
        template=make_zip({"service.yaml": SERVICE, **scripts}), filename="portal.csar", inputs={}, target=swarm
    )
    cleanup.append(deployment.pk)
    deployment = drive(deployment, {Deployment.State.RUNNING, Deployment.State.FAILED})
    assert deployment.state == Deployment.State.FAILED
    failed = Step.objects.get(deployment=deployment, state=Step.State.FAILED)
    assert failed.key == "web_server.start"
    assert "exit code 3" in failed.error and "cannot bind port 80" in failed.error
