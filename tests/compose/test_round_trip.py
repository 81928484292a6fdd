"""A publisher's compose file, deployed by Agora, exported, and deployed elsewhere as a stack.

import → Agora's engine deploys the template (real Redis, PostgreSQL and swarm) → the
subscriber exports the deployment → `docker stack deploy` runs it, on the same host port,
once the Agora deployment is gone.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from crane import driver
from crane.compose import export_compose
from crane.models import Target
from orchestrator.compose import compose_to_tosca
from orchestrator.models import Deployment
from orchestrator.services import deployment_create
from tests.compose.conftest import Stacks, docker
from tests.compose.test_export import deploy_export, wait_stack_running
from tests.crane.conftest import SWARM, http_get
from tests.engine.conftest import drive

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not SWARM, reason="the local Docker daemon is not an active swarm manager"),
]

COMPOSE = """\
name: greeter
services:
  web:
    image: agora/busybox:latest
    command: sh -c 'echo "$$GREETING" > /www/index.html && exec httpd -f -p 80 -h /www'
    environment:
      GREETING: ${GREETING:-hello}
    ports: ["8080:80"]
    volumes: ["site:/www"]
    secrets: [api_token]
    healthcheck:
      test: nc -w 1 127.0.0.1 80 </dev/null && test -s /run/secrets/api_token
      interval: 1s
      timeout: 1s
      retries: 10
    deploy:
      resources:
        limits: {cpus: "0.2", memory: 32M}
  probe:
    image: agora/busybox:latest
    command: ["sh", "-c", "while true; do nc -w 2 web 80 </dev/null && touch /tmp/ok; sleep 1; done"]
    depends_on: [web]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ok"]
      interval: 1s
      retries: 20
    deploy:
      resources:
        limits: {cpus: "0.1", memory: 16M}
volumes:
  site:
secrets:
  api_token:
    file: ./api_token.txt
"""


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - a URL of our own deployment
        return str(answer.read().decode())


def test_a_compose_file_deploys_through_agora_and_its_export_runs_as_a_stack(
    swarm: Target, queue_name: str, cleanup: list[str], stacks: Stacks, tmp_path: Path
) -> None:
    imported = compose_to_tosca(COMPOSE)
    assert imported.template is not None, [p.format("compose.yml") for p in imported.errors]

    deployment = deployment_create(
        template=imported.template.encode(),
        filename="greeter.yaml",
        inputs={"GREETING": "bon dia", "api_token": "tok-123"},
        target=swarm,
    )
    cleanup.append(deployment.pk)
    deployment = drive(deployment, {Deployment.State.RUNNING, Deployment.State.FAILED})
    assert deployment.state == Deployment.State.RUNNING, deployment.error
    url = deployment.outputs["web_url"]
    assert fetch(url).strip() == "bon dia"

    text = export_compose(swarm, deployment.pk)
    exported = yaml.safe_load(text)
    assert sorted(exported["services"]) == ["probe", "web"]
    assert exported["services"]["web"]["environment"] == {"GREETING": "bon dia"}  # the subscriber's value
    assert exported["services"]["web"]["command"] == [
        "sh",
        "-c",
        'echo "$$GREETING" > /www/index.html && exec httpd -f -p 80 -h /www',
    ]
    assert exported["secrets"] == {"api_token": {"file": "./secrets/api_token"}}
    assert exported["volumes"] == {"site": {}}
    assert "tok-123" not in text

    driver.remove_deployment(swarm, deployment.pk)
    name = deploy_export(text, tmp_path, stacks, {"api_token": b"tok-123"})
    wait_stack_running(name, 2)
    port = url.rsplit(":", 1)[1].strip("/")
    assert http_get(f"http://127.0.0.1:{port}/", timeout=30).strip() == "bon dia"
    deadline = time.monotonic() + 30
    while "(healthy)" not in docker("ps", "--filter", f"name={name}_web", "--format", "{{.Status}}").stdout:
        assert time.monotonic() < deadline, "the stack's web never found its secret"
        time.sleep(0.5)
