"""Engine fixtures: a swarm target on this machine's Docker, a queue of the test's own, and a worker to drive it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Iterator
from typing import Any

import pytest
from rq import SimpleWorker

from crane.models import Target
from orchestrator import engine
from orchestrator.models import Deployment
from orchestrator.queue import redis_connection, step_queue
from tests.crane.conftest import SWARM, make_target, sweep

needs_swarm = pytest.mark.skipif(not SWARM, reason="the local Docker daemon is not an active swarm manager")

WEB_TEMPLATE = """\
tosca_definitions_version: tosca_simple_yaml_1_3
imports: [agora/v1/profile.yaml]
topology_template:
  inputs:
    greeting:
      type: string
      default: hello
  node_templates:
    web:
      type: agora.nodes.Container
      properties:
        image: agora/busybox:latest
        command: [sh, -c, "mkdir -p /www && echo $GREETING > /www/index.html && exec httpd -f -p 80 -h /www"]
        environment:
          GREETING: { get_input: greeting }
        ports:
          - target: 80
        cpu_limit: 0.2
        mem_limit: 32 MB
        healthcheck:
          test: [CMD-SHELL, "nc -w 1 127.0.0.1 80 </dev/null"]
          interval: 1 s
          timeout: 1 s
          retries: 5
  outputs:
    url:
      value:
        concat: ["http://", { get_attribute: [web, public_address] }, ":", { get_attribute: [web, public_port] }, "/"]
"""


@pytest.fixture
def queue_name(settings: Any) -> Iterator[str]:
    """A queue of this test's own, so parallel runs never take each other's jobs."""
    name = f"agora-test-{uuid.uuid4().hex[:8]}"
    settings.AGORA_QUEUE = name
    yield name
    queue = step_queue()
    queue.empty()
    queue.delete(delete_jobs=True)


@pytest.fixture
def swarm(transactional_db: None) -> Target:
    return make_target(Target.Mode.SWARM)


@pytest.fixture
def cleanup() -> Iterator[list[str]]:
    """Deployment ids to sweep from Docker after the test, whatever happened."""
    ids: list[str] = []
    yield ids
    for deployment_id in ids:
        sweep(deployment_id)


def drive(deployment: Deployment, until: Collection[str], *, timeout: float = 120.0) -> Deployment:
    """Works the queue in this process (as `manage.py worker` would) until the deployment settles."""
    connection = redis_connection()
    worker = SimpleWorker([step_queue(connection)], connection=connection)
    deadline = time.monotonic() + timeout
    while True:
        worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
        engine.reconcile()
        deployment.refresh_from_db()
        if deployment.state in until:
            return deployment
        if time.monotonic() > deadline:
            steps = [(s.key, s.state, s.error) for s in engine.current_steps(deployment)]
            raise AssertionError(f"deployment {deployment.pk} still {deployment.state} after {timeout} s: {steps}")
        time.sleep(0.2)


@pytest.fixture
def driver_loop() -> Callable[..., Deployment]:
    return drive
