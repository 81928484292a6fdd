"""Crash safety: a worker killed with SIGKILL, Redis restarted or dockerd restarted mid-deployment.

Each test runs real `manage.py worker` processes against this test's database, a Redis of
this module's own (restarting the shared one would drop every other run's queues) and the
machine's Docker swarm; it breaks something at a chosen point of a deployment, lets a
worker carry on, and checks what a subscriber relies on: the deployment reaches
"running", every step is done, each node has exactly one service and one running
container (nothing was created twice), and the output URL answers. How long the recovery
took is printed (run with -s to see it), not asserted.

The dockerd restart disturbs every Docker user of this machine for a few seconds; it runs
by default, last, and AGORA_SKIP_DOCKERD_RESTART_TEST=1 skips it.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest
from django.db import connection
from rq import Worker

from crane import conf
from crane.models import Target
from orchestrator.models import Deployment, Event, Step
from orchestrator.queue import step_queue
from orchestrator.services import deployment_create
from tests.engine.conftest import needs_swarm
from tests.engine.faults import (
    RedisServer,
    WorkerProcess,
    Workers,
    docker_answers,
    dockerd_restarted_afterwards,
    start_dockerd,
    stop_dockerd,
    wait_for,
)

pytestmark = [pytest.mark.docker, needs_swarm]

LEASE_SECONDS = 4
# Each httpd starts this long after its container, so that a wait step runs long enough to be killed in.
START_DELAY = 3
GREETING = "still here"
SETTLED = {Deployment.State.RUNNING, Deployment.State.FAILED}


def web_template(*nodes: str, delay: int = START_DELAY) -> str:
    """Independent busybox httpd nodes with a health check and a published port; output url_<node> each."""
    lines = [
        "tosca_definitions_version: tosca_simple_yaml_1_3",
        "imports: [agora/v1/profile.yaml]",
        "topology_template:",
        "  inputs:",
        "    greeting: {type: string, default: hello}",
        "  node_templates:",
    ]
    for node in nodes:
        lines += [
            f"    {node}:",
            "      type: agora.nodes.Container",
            "      properties:",
            "        image: agora/busybox:latest",
            f'        command: [sh, -c, "sleep {delay}; mkdir -p /www && echo $GREETING > /www/index.html'
            ' && exec httpd -f -p 80 -h /www"]',
            "        environment: {GREETING: {get_input: greeting}}",
            "        ports: [{target: 80}]",
            "        cpu_limit: 0.2",
            "        mem_limit: 32 MB",
            "        healthcheck:",
            '          test: [CMD-SHELL, "nc -w 1 127.0.0.1 80 </dev/null"]',
            "          interval: 1 s",
            "          timeout: 1 s",
            f"          retries: {delay + 5}",  # fails only if the httpd does not come up at all
        ]
    lines.append("  outputs:")
    for node in nodes:
        lines += [
            f"    url_{node}:",
            "      value:",
            f'        concat: ["http://", {{get_attribute: [{node}, public_address]}}, ":",'
            f' {{get_attribute: [{node}, public_port]}}, "/"]',
        ]
    return "\n".join(lines) + "\n"


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def engine_env(transactional_db: None, settings: Any, redis_server: RedisServer, queue_name: str) -> dict[str, str]:
    """The environment of this test's workers: its database, Redis and queue, short leases."""
    settings.REDIS_URL = redis_server.url
    settings.AGORA_STEP_LEASE_SECONDS = LEASE_SECONDS
    settings.AGORA_RECONCILE_SECONDS = 1
    settings.AGORA_WAIT_HEALTHY_SECONDS = 60
    db = connection.settings_dict  # the test database, e.g. test_<name> or test_<name>_gw0
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
        f"{db['NAME']}",
        "REDIS_URL": redis_server.url,
        "AGORA_QUEUE": queue_name,
        "AGORA_STEP_LEASE_SECONDS": str(LEASE_SECONDS),
        "AGORA_RECONCILE_SECONDS": "1",
        "AGORA_WAIT_HEALTHY_SECONDS": "60",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def workers(engine_env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    """Worker processes of the test; all killed at its end, whatever happened (their logs are printed)."""
    started = Workers(engine_env, tmp_path)
    yield started
    started.kill_all()
    print(started.report())


# --- helpers -------------------------------------------------------------------------------------


def deploy(target: Target, cleanup: list[str], *nodes: str, delay: int = START_DELAY) -> Deployment:
    deployment = deployment_create(
        template=web_template(*nodes, delay=delay).encode(),
        filename="web.yaml",
        inputs={"greeting": GREETING},
        target=target,
    )
    cleanup.append(deployment.pk)
    return deployment


def steps_of(deployment: Deployment) -> dict[str, Step]:
    return {s.key: s for s in Step.objects.filter(deployment=deployment, generation=deployment.generation)}


def running_step(deployment: Deployment, worker: WorkerProcess, kind: str) -> Step | None:
    return Step.objects.filter(
        deployment=deployment, kind=kind, state=Step.State.RUNNING, lease_owner=worker.identity
    ).first()


def docker_objects(deployment: Deployment) -> dict[str, tuple[list[str], int]]:
    """Per node: the ids of its services and how many of its containers run, looked at without crane."""
    client = docker.DockerClient(base_url=conf.local_endpoint(), version="auto", timeout=30)
    try:
        selector = f"agora.deployment={deployment.pk}"
        services: dict[str, list[str]] = {}
        for service in client.api.services(filters={"label": selector}):
            services.setdefault(service["Spec"]["Labels"]["agora.node"], []).append(service["ID"])
        running = Counter(
            c["Labels"]["agora.node"]
            for c in client.api.containers(filters={"label": [selector, "agora.kind=service"]})
        )
        return {node: (services.get(node, []), running[node]) for node in services.keys() | running.keys()}
    finally:
        client.close()


def answer(url: str) -> str:
    def body() -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our deployment's URL
                return str(response.read().decode()).strip()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    return str(wait_for(body, timeout=15, what=f"{url} answers", every=0.3))


def converged(deployment: Deployment, nodes: tuple[str, ...], *, timeout: float = 90) -> Deployment:
    """Waits for the deployment to settle, then checks it is whole: running, every step done, nothing twice."""

    def settled() -> bool:
        deployment.refresh_from_db()
        return deployment.state in SETTLED

    try:
        wait_for(settled, timeout=timeout, what=f"deployment {deployment.pk} settles", every=0.2)
    except AssertionError:
        raise AssertionError(
            f"deployment {deployment.pk} still {deployment.state}: "
            f"{[(s.key, s.state, s.attempts, s.error) for s in steps_of(deployment).values()]}"
        ) from None
    assert deployment.state == Deployment.State.RUNNING, deployment.error
    assert {k: s.state for k, s in steps_of(deployment).items() if s.state != Step.State.DONE} == {}
    found = {node: (len(ids), running) for node, (ids, running) in docker_objects(deployment).items()}
    assert found == dict.fromkeys(nodes, (1, 1))  # one service and one running container each: nothing twice
    for node in nodes:
        assert answer(deployment.outputs[f"url_{node}"]) == GREETING
    return deployment


def resumed_events(deployment: Deployment) -> list[str]:
    return list(Event.objects.filter(deployment=deployment, kind="step.resumed").values_list("message", flat=True))


# --- a worker killed -----------------------------------------------------------------------------


def test_worker_killed_while_a_step_runs_and_others_wait_resumes_them_without_duplicates(
    swarm: Target, workers: Workers, cleanup: list[str]
) -> None:
    nodes = ("web", "api")
    first = workers.start()
    deployment = deploy(swarm, cleanup, *nodes)

    def killable() -> Step | None:
        waiting = Step.objects.filter(deployment=deployment, state=Step.State.QUEUED).exists()
        return running_step(deployment, first, "wait") if waiting else None

    victim = wait_for(killable, timeout=60, what="a wait step runs while another step is queued")
    first.kill()
    killed = time.monotonic()
    second = workers.start()

    wait_for(lambda: resumed_events(deployment), timeout=30, what="the reconciler resumes the step")
    resumed = time.monotonic() - killed
    wait_for(
        lambda: (
            Step.objects.filter(pk=victim.pk, lease_owner=second.identity).exists()
            or Step.objects.filter(pk=victim.pk, state=Step.State.DONE).exists()
        ),
        timeout=30,
        what="the new worker takes the step",
    )
    taken = time.monotonic() - killed
    converged(deployment, nodes)
    print(
        f"\n[faults] SIGKILL during {victim.key}: resumed after {resumed:.1f} s, running again after {taken:.1f} s, "
        f"deployment running {time.monotonic() - killed:.1f} s after the kill"
    )
    assert any(victim.key in message for message in resumed_events(deployment))
    attempts = {k: s.attempts for k, s in steps_of(deployment).items()}
    assert attempts.pop(victim.key) == 2
    assert set(attempts.values()) == {1}  # the steps that were waiting ran once, on the new worker


def test_worker_killed_after_creating_a_service_but_before_recording_it_adopts_the_service(
    swarm: Target, workers: Workers, cleanup: list[str]
) -> None:
    nodes = ("web",)
    first = workers.start(fault="pause-after:web.service")
    deployment = deploy(swarm, cleanup, *nodes)
    wait_for(first.stalled, timeout=60, what="the worker has created the service")
    ((before,), _) = docker_objects(deployment)["web"]
    assert Step.objects.get(deployment=deployment, key="web.service").state == Step.State.RUNNING

    first.kill()
    killed = time.monotonic()
    workers.start()
    wait_for(lambda: resumed_events(deployment), timeout=30, what="the reconciler resumes the step")
    resumed = time.monotonic() - killed
    converged(deployment, nodes)
    print(
        f"\n[faults] SIGKILL between creating web's service and recording it: resumed after {resumed:.1f} s, "
        f"deployment running {time.monotonic() - killed:.1f} s after the kill"
    )
    service = steps_of(deployment)["web.service"]
    assert service.attempts == 2
    assert service.result["action"] == "unchanged"  # the second run found the first run's service as it wanted it
    assert docker_objects(deployment)["web"][0] == [before]  # the same service, adopted


def test_worker_killed_after_taking_a_job_but_before_claiming_its_step_gets_the_step_run(
    swarm: Target, workers: Workers, cleanup: list[str]
) -> None:
    """Redis says the job started, the database says the step is queued: no lease will ever expire for it."""
    nodes = ("web", "api")
    first = workers.start(fault="pause-before:network")
    deployment = deploy(swarm, cleanup, *nodes)
    wait_for(first.stalled, timeout=60, what="the worker has taken the network step's job")
    assert {k: s.state for k, s in steps_of(deployment).items() if s.state != Step.State.PENDING} == {
        "network": Step.State.QUEUED,
        "web.image": Step.State.QUEUED,
        "api.image": Step.State.QUEUED,
    }

    first.kill()
    killed = time.monotonic()
    workers.start()
    wait_for(
        lambda: Step.objects.filter(deployment=deployment, key="network", state=Step.State.DONE).exists(),
        timeout=30,
        what="the network step runs on the new worker",
    )
    ran = time.monotonic() - killed
    converged(deployment, nodes)
    print(
        f"\n[faults] SIGKILL between taking the network step's job and claiming it: the step ran {ran:.1f} s "
        f"after the kill, deployment running {time.monotonic() - killed:.1f} s after it"
    )
    assert {s.attempts for s in steps_of(deployment).values()} == {1}


def test_a_worker_asked_to_stop_stops_at_once(workers: Workers) -> None:
    """The worker starts RQ's loop again when it ends unasked; SIGTERM must still end the process."""
    worker = workers.start()
    queue = step_queue()
    wait_for(lambda: Worker.count(queue=queue) == 1, timeout=30, what="the worker listens on the queue")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=10) == 0


# --- Redis restarted -----------------------------------------------------------------------------

# Longer than the Redis client's own retries, and than what is left of the running step.
REDIS_DOWN_SECONDS = 8


def test_redis_restart_mid_deployment_loses_its_jobs_and_the_same_worker_finishes_the_deployment(
    swarm: Target, workers: Workers, cleanup: list[str], redis_server: RedisServer
) -> None:
    nodes = ("web", "api")
    worker = workers.start()
    deployment = deploy(swarm, cleanup, *nodes)

    def restartable() -> Step | None:
        waiting = Step.objects.filter(deployment=deployment, state=Step.State.QUEUED).exists()
        return running_step(deployment, worker, "wait") if waiting else None

    wait_for(restartable, timeout=60, what="a wait step runs while another step is queued")
    redis_server.stop()
    try:
        time.sleep(REDIS_DOWN_SECONDS)
    finally:
        redis_server.start()
    back = time.monotonic()
    converged(deployment, nodes)
    print(
        f"\n[faults] Redis down {REDIS_DOWN_SECONDS} s and restarted empty: deployment running "
        f"{time.monotonic() - back:.1f} s after Redis came back"
    )
    assert worker.alive(), "the worker must outlive a Redis outage"
    assert len(workers.started) == 1
    assert {s.attempts for s in steps_of(deployment).values()} == {1}


# --- dockerd restarted: keep this test last; it disturbs every Docker user of the machine ------------


# `serial`: make test runs it alone, after the parallel run, since it stops every Docker user here.
@pytest.mark.serial
@pytest.mark.skipif(
    os.environ.get("AGORA_SKIP_DOCKERD_RESTART_TEST") == "1",
    reason="AGORA_SKIP_DOCKERD_RESTART_TEST=1: the test that restarts dockerd is skipped",
)
def test_dockerd_restart_mid_deployment_is_retried_and_the_deployment_converges(
    swarm: Target, workers: Workers, cleanup: list[str]
) -> None:
    nodes = ("web",)
    worker = workers.start()
    # The httpd starts late enough for dockerd to be stopped while the wait step is still waiting for it.
    deployment = deploy(swarm, cleanup, *nodes, delay=5)
    victim = wait_for(lambda: running_step(deployment, worker, "wait"), timeout=60, what="the wait step runs")
    with dockerd_restarted_afterwards():
        stopping = time.monotonic()
        stop_dockerd()
        stopped = time.monotonic()
        start_dockerd()
    back = time.monotonic()
    converged(deployment, nodes, timeout=120)
    running = time.monotonic() - back
    step = steps_of(deployment)[victim.key]
    retries = list(Event.objects.filter(deployment=deployment, kind="step.retry").values_list("message", flat=True))
    print(
        f"\n[faults] dockerd stopped in {stopped - stopping:.1f} s, back after {back - stopped:.1f} s; "
        f"{victim.key} retried {len(retries)} time(s); deployment running {running:.1f} s after dockerd answered"
    )
    assert docker_answers(swarm=True)
    assert step.attempts >= 2 and retries  # it was retried, not failed
    assert not Event.objects.filter(deployment=deployment, kind="step.failed").exists()
