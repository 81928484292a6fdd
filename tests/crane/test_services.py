"""A deployment's objects on a real Docker, in swarm mode and in engine mode.

One running service is reused across the asserts of a scenario, so that the suite
stays fast: converge, answer on the published port, change nothing when asked
again, update when the spec changes, and leave nothing behind on removal.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from crane import driver
from crane.errors import HealthTimeout, InvalidSpec, NodeUnhealthy, PolicyViolation
from crane.models import PublishedPort, Target
from crane.specs import Action, HealthCheck, Kind, Mount, Port, SecretMount
from tests.crane.conftest import Deployments, containers_of, http_get, needs_docker, web

pytestmark = [pytest.mark.docker, needs_docker, pytest.mark.django_db]


def _exec(container: Any, *command: str) -> tuple[int, str]:
    code, output = container.exec_run(list(command))
    return int(code), output.decode(errors="replace")


def _swarm_version(raw: Any, name: str) -> int:
    return int(raw.api.inspect_service(name)["Version"]["Index"])


def test_service_converges_answers_on_its_port_and_is_idempotent(
    target: Target, deployments: Deployments, raw: Any
) -> None:
    deployment = deployments.new(target)
    swarm = target.mode == Target.Mode.SWARM

    network = driver.ensure_network(target, deployment)
    volume = driver.ensure_volume(target, deployment, "data")
    secret = driver.ensure_secret(target, deployment, "token", b"s3cret")
    assert (network.action, volume.action, secret.action) == (Action.CREATED,) * 3
    spec = web(mounts=(Mount("data", "/data"),), secrets=(SecretMount("token", "api-token"),))
    first = driver.ensure_service(target, deployment, spec)
    assert first.action == Action.CREATED
    (endpoint,) = first.endpoints
    assert target.port_range_start <= endpoint.port <= target.port_range_end
    assert (endpoint.host, endpoint.target_port) == ("127.0.0.1", 80)

    status = driver.wait_healthy(target, deployment, "web", timeout=30)
    assert status.ready and status.running == 1
    assert http_get(f"http://127.0.0.1:{endpoint.port}/") == "hello web\n"

    # Everything a second time: nothing changes, the Docker objects keep their ids and versions.
    (container,) = containers_of(raw, deployment, "web")
    version = _swarm_version(raw, first.name) if swarm else None
    again = [
        driver.ensure_network(target, deployment),
        driver.ensure_volume(target, deployment, "data"),
        driver.ensure_secret(target, deployment, "token", b"s3cret"),
        driver.ensure_service(target, deployment, spec),
    ]
    assert [a.action for a in again] == [Action.UNCHANGED] * 4
    assert [a.id for a in again] == [network.id, volume.id, secret.id, first.id]
    assert again[3].endpoints == first.endpoints
    assert [c.id for c in containers_of(raw, deployment, "web")] == [container.id]
    if swarm:
        assert _swarm_version(raw, first.name) == version

    # The secret is a file, the volume is mounted, the limits and the hardening are in place.
    assert _exec(container, "cat", "/run/secrets/api-token") == (0, "s3cret")
    assert _exec(container, "sh", "-c", "echo kept > /data/file && cat /data/file") == (0, "kept\n")
    _, status_text = _exec(container, "cat", "/proc/1/status")
    capabilities = int(next(line for line in status_text.splitlines() if line.startswith("CapBnd")).split()[1], 16)
    assert not capabilities & (1 << 13), "NET_RAW is dropped"
    assert not capabilities & (1 << 27), "MKNOD is dropped"
    host_config = raw.api.inspect_container(container.id)["HostConfig"]
    assert host_config["NanoCpus"] == 250_000_000
    assert host_config["Memory"] == 32 * 1024 * 1024
    assert host_config["PidsLimit"] == 1024
    if not swarm:
        assert "no-new-privileges" in host_config["SecurityOpt"]
        assert "NoNewPrivs:\t1" in status_text

    objects = driver.list_objects(target, deployment)
    assert objects.networks == (network.name,)
    assert objects.volumes == (volume.name,)
    assert objects.secrets == (secret.name,)
    assert objects.services == ((first.name,) if swarm else ())
    assert len(objects.containers) == 1

    stats = driver.service_stats(target, deployment, "web")
    assert len(stats) == 1 and stats[0].memory_bytes > 0 and stats[0].memory_limit == 32 * 1024 * 1024
    logs = driver.service_logs(target, deployment, "web")
    assert any("serving web" in line.message for line in logs)

    # A changed spec updates the service in place, and the new version answers.
    updated = driver.ensure_service(target, deployment, web(environment={"GREETING": "again"}))
    assert updated.action == Action.UPDATED and updated.id == (first.id if swarm else updated.id)
    assert updated.endpoints == first.endpoints
    driver.wait_healthy(target, deployment, "web", timeout=30)
    deadline = time.monotonic() + 30
    while http_get(f"http://127.0.0.1:{endpoint.port}/") != "hello again\n":
        assert time.monotonic() < deadline, "the updated service never answered"
        time.sleep(0.2)
    if swarm:
        assert _swarm_version(raw, first.name) > (version or 0)
    else:
        assert [c.id for c in containers_of(raw, deployment, "web")] != [container.id]

    # Removal leaves nothing with the deployment's label, releases the ports, and can be repeated.
    removed = driver.remove_deployment(target, deployment)
    assert removed.networks == (network.name,)
    selector = {"label": f"agora.deployment={deployment}"}
    assert raw.api.containers(all=True, filters=selector) == []
    assert raw.api.networks(filters=selector) == []
    assert raw.api.volumes(filters=selector)["Volumes"] in (None, [])
    if swarm:
        assert raw.api.services(filters=selector) == []
        assert raw.api.secrets(filters=selector) == []
    assert not PublishedPort.objects.filter(target=target, deployment=deployment).exists()
    assert driver.remove_deployment(target, deployment).empty


def test_deployments_cannot_reach_each_other(target: Target, deployments: Deployments, raw: Any) -> None:
    first, second = deployments.new(target), deployments.new(target)
    for deployment in (first, second):
        driver.ensure_network(target, deployment)
        greeting = {"GREETING": deployment}
        driver.ensure_services(
            target, deployment, [web("web", ports=(), environment=greeting), web("api", ports=(), environment=greeting)]
        )
    driver.wait_deployment_healthy(target, first, timeout=30)
    driver.wait_deployment_healthy(target, second, timeout=30)

    (web_a,) = containers_of(raw, first, "web")
    (web_b,) = containers_of(raw, second, "web")
    network_b = f"agora-{second}-net"
    address_b = raw.api.inspect_container(web_b.id)["NetworkSettings"]["Networks"][network_b]["IPAddress"]
    assert address_b

    def probe(host: str, source: Any = web_a) -> str:
        # The page, not the connection, is the proof: packets to foreign addresses leave by the default
        # route, where something outside this machine may well accept a connection on port 80.
        return _exec(source, "sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 80")[1]

    assert f"hello {second}" in probe(address_b, web_b), "the address answers within its own deployment"
    assert f"hello {first}" in probe("api"), "a node reaches another node of its deployment by name"
    assert f"hello {second}" not in probe(address_b), "but not a container of another deployment by address"
    assert f"hello {second}" not in probe(f"agora-{second}-web"), "nor by name"


def test_health_timeout_names_the_node_and_its_last_error(target: Target, deployments: Deployments) -> None:
    deployment = deployments.new(target)
    driver.ensure_network(target, deployment)
    sick = web("sick", ports=(), healthcheck=HealthCheck(test=("CMD", "false"), interval=0.2, timeout=1, retries=1))
    driver.ensure_service(target, deployment, sick)

    started = time.monotonic()
    # HealthTimeout, unless it failed often enough to give up first. The timeout leaves a loaded machine
    # time to start the task, so the error is the health check's, not "still starting".
    with pytest.raises(NodeUnhealthy) as caught:
        driver.wait_healthy(target, deployment, "sick", timeout=15)
    assert time.monotonic() - started < 25
    assert caught.value.node == "sick"
    assert '"sick"' in caught.value.message and "Last error:" in caught.value.message
    assert "health" in caught.value.last_error.lower() or "exit" in caught.value.last_error.lower()


def test_crashing_node_is_given_up_early_with_its_error(target: Target, deployments: Deployments) -> None:
    deployment = deployments.new(target)
    driver.ensure_network(target, deployment)
    driver.ensure_service(target, deployment, web("crash", ports=(), healthcheck=None, command=("sh", "-c", "exit 3")))
    started = time.monotonic()
    with pytest.raises(NodeUnhealthy) as caught:
        driver.wait_healthy(target, deployment, "crash", timeout=60)
    assert not isinstance(caught.value, HealthTimeout)
    assert time.monotonic() - started < 20
    assert caught.value.node == "crash" and "3" in caught.value.last_error


def test_scripts_run_inside_a_node_and_one_node_is_removed_alone(
    target: Target, deployments: Deployments, raw: Any
) -> None:
    deployment = deployments.new(target)
    driver.ensure_network(target, deployment)
    driver.ensure_services(target, deployment, [web("web"), web("api", ports=())])
    driver.wait_deployment_healthy(target, deployment, timeout=30)

    script = b"echo out; echo err >&2; cat /www/index.html; echo $EXTRA; exit 4\n"
    code, output = driver.exec_in_node(target, deployment, "api", script, environment={"EXTRA": "given"})
    assert code == 4
    assert output.split() == ["out", "err", "hello", "api", "given"] or {"out", "err", "given"} <= set(output.split())

    removed = driver.remove_node(target, deployment, "web")
    assert len(removed.containers) == 1
    assert containers_of(raw, deployment, "web") == [] and len(containers_of(raw, deployment, "api")) == 1
    assert not PublishedPort.objects.filter(target=target, deployment=deployment, node="web").exists()
    assert driver.remove_node(target, deployment, "web").containers == ()


def test_engine_refuses_published_ports_on_several_replicas(engine_target: Target, deployments: Deployments) -> None:
    deployment = deployments.new(engine_target)
    with pytest.raises(InvalidSpec, match="one replica"):
        driver.ensure_service(engine_target, deployment, web(replicas=2))
    assert driver.list_objects(engine_target, deployment).empty


def test_replicas_scale_up_and_down(target: Target, deployments: Deployments, raw: Any) -> None:
    deployment = deployments.new(target)
    driver.ensure_network(target, deployment)
    driver.ensure_service(target, deployment, web(ports=(), replicas=2))
    assert driver.wait_healthy(target, deployment, "web", timeout=30).running == 2
    assert len(containers_of(raw, deployment, "web")) == 2
    assert driver.ensure_service(target, deployment, web(ports=(), replicas=1)).action == Action.UPDATED
    assert driver.wait_healthy(target, deployment, "web", timeout=30).desired == 1
    deadline = time.monotonic() + 20
    while len(containers_of(raw, deployment, "web")) != 1:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_services_must_use_their_own_deployments_volumes_and_secrets(target: Target, deployments: Deployments) -> None:
    mine, other = deployments.new(target), deployments.new(target)
    driver.ensure_network(target, mine)
    driver.ensure_volume(target, other, "data")
    driver.ensure_secret(target, other, "token", b"theirs")

    with pytest.raises(PolicyViolation) as volume:
        driver.ensure_service(target, mine, web(mounts=(Mount("data", "/data"),)))
    assert volume.value.setting == "mounts"
    with pytest.raises(PolicyViolation) as secret:
        driver.ensure_service(target, mine, web(secrets=(SecretMount("token", "token"),)))
    assert secret.value.setting == "secrets"
    assert driver.list_objects(target, mine).containers == ()


def test_new_secret_content_reaches_the_service(target: Target, deployments: Deployments, raw: Any) -> None:
    deployment = deployments.new(target)
    driver.ensure_network(target, deployment)
    old = driver.ensure_secret(target, deployment, "token", b"one")
    spec = web(ports=(), secrets=(SecretMount("token", "token"),))
    driver.ensure_service(target, deployment, spec)
    new = driver.ensure_secret(target, deployment, "token", b"two")
    assert new.kind == Kind.SECRET and new.action == Action.CREATED and new.name != old.name
    assert driver.ensure_service(target, deployment, spec).action == Action.UPDATED
    driver.wait_healthy(target, deployment, "web", timeout=30)
    deadline = time.monotonic() + 20
    while True:
        (container,) = containers_of(raw, deployment, "web") or [None]
        if container is not None and _exec(container, "cat", "/run/secrets/token") == (0, "two"):
            break
        assert time.monotonic() < deadline, "the new secret never reached the container"
        time.sleep(0.3)
    # The old version goes once nothing uses it.
    assert driver.list_objects(target, deployment).secrets == (new.name,)


def test_ports_come_from_the_range_and_are_distinct(swarm_target: Target, deployments: Deployments) -> None:
    deployment = deployments.new(swarm_target)
    driver.ensure_network(swarm_target, deployment)
    results = driver.ensure_services(
        swarm_target, deployment, [web("one", ports=(Port(80), Port(81))), web("two")], max_workers=2
    )
    ports = [e.port for r in results for e in r.endpoints]
    assert len(set(ports)) == 3
    assert all(swarm_target.port_range_start <= p <= swarm_target.port_range_end for p in ports)
    assert PublishedPort.objects.filter(target=swarm_target, deployment=deployment).count() == 3
