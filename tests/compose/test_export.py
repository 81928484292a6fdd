"""Compose export against the real Docker engine: deploy with crane, export, and deploy the export as a stack.

The stack is deployed after the Agora deployment is removed, on the same host ports: the
export is what a subscriber takes elsewhere, and it must run there as it ran in Agora.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from crane import driver
from crane.compose import DeploymentNotFound, export_compose
from crane.models import Target
from crane.specs import BuildContext, HealthCheck, Mount, Port, SecretMount, ServiceSpec
from tests.compose.conftest import Deployments, Stacks, docker
from tests.crane.conftest import BUSYBOX, DOCKER, MIB, SWARM, http_get, make_target, new_deployment_id, web

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not DOCKER, reason="no Docker daemon answers at DOCKER_HOST or the default socket"),
    pytest.mark.django_db,
]
needs_swarm = pytest.mark.skipif(not SWARM, reason="the local Docker daemon is not an active swarm manager")


def deploy(target: Target, deployment: str, specs: list[ServiceSpec]) -> int:
    """A small deployment made with crane's driver directly; the web node's published host port."""
    driver.ensure_network(target, deployment)
    driver.ensure_volume(target, deployment, "site")
    driver.ensure_secret(target, deployment, "api_token", b"s3cret-token\n")
    ensured = driver.ensure_services(target, deployment, specs)
    driver.wait_deployment_healthy(target, deployment, timeout=60)
    return next(e.port for ensured_one in ensured for e in ensured_one.endpoints)


def specs() -> list[ServiceSpec]:
    front = web(
        "web",
        environment={"GREETING": "web", "PRICE": "5$ or ${NOT_A_VARIABLE}"},
        mounts=(Mount("site", "/srv/site"),),
        secrets=(SecretMount("api_token", "token.txt"),),
        labels={"org.example.team": "forms"},
    )
    # A second node, not published, that reaches the first by name through the deployment's network.
    back = ServiceSpec(
        name="probe",
        image=BUSYBOX,
        command=("sh", "-c", "while true; do nc -w 2 web 80 </dev/null && touch /tmp/ok; sleep 1; done"),
        cpu_limit=0.1,
        memory_limit=16 * MIB,
        healthcheck=HealthCheck(test=("CMD-SHELL", "test -f /tmp/ok"), interval=0.5, timeout=2, retries=20),
        options={"stop_grace_period": 1},
    )
    return [front, back]


def wait_stack_running(name: str, services: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    states = ""
    while time.monotonic() < deadline:
        states = docker(
            "stack", "ps", name, "--filter", "desired-state=running", "--format", "{{.CurrentState}}"
        ).stdout
        running = [s for s in states.splitlines() if s.startswith("Running")]
        if len(running) >= services:
            return
        time.sleep(0.5)
    errors = docker("stack", "ps", name, "--no-trunc", "--format", "{{.Name}} {{.CurrentState}} {{.Error}}").stdout
    raise AssertionError(f"stack {name} did not reach {services} running tasks in {timeout} s:\n{errors}")


def deploy_export(text: str, tmp_path: Path, stacks: Stacks, secrets: dict[str, bytes]) -> str:
    folder = tmp_path / "elsewhere"
    (folder / "secrets").mkdir(parents=True)
    (folder / "docker-compose.yml").write_text(text)
    for name, value in secrets.items():
        (folder / "secrets" / name).write_bytes(value)
    name = stacks.new()
    result = subprocess.run(
        ["docker", "stack", "deploy", "--detach=true", "-c", "docker-compose.yml", name],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return name


def check_service_definitions(exported: dict[str, Any], port: int) -> None:
    front, probe = exported["services"]["web"], exported["services"]["probe"]
    assert front["image"] == BUSYBOX
    assert front["command"][:2] == ["sh", "-c"]
    assert 'echo "hello $$GREETING"' in front["command"][2]
    # Compose interpolates $ in every value: a literal $ is exported as $$.
    assert front["environment"] == {"GREETING": "web", "PRICE": "5$$ or $${NOT_A_VARIABLE}"}
    assert front["ports"] == [{"target": 80, "published": port, "protocol": "tcp", "mode": "host"}]
    assert front["volumes"] == [{"type": "volume", "source": "site", "target": "/srv/site"}]
    assert front["secrets"] == [{"source": "api_token", "target": "token.txt"}]
    assert front["networks"] == ["private"]
    assert front["labels"] == {"org.example.team": "forms"}
    assert front["init"] is True
    assert front["stop_grace_period"] == "1s"
    assert front["healthcheck"] == {
        "test": ["CMD-SHELL", "nc -w 1 127.0.0.1 80 </dev/null"],
        "interval": "500ms",
        "timeout": "2s",
        "retries": 3,
    }
    assert front["deploy"]["replicas"] == 1
    assert front["deploy"]["endpoint_mode"] == "dnsrr"
    assert front["deploy"]["resources"]["limits"]["cpus"] == "0.25"
    assert front["deploy"]["resources"]["limits"]["memory"] == "32M"
    assert "ports" not in probe and "secrets" not in probe and "volumes" not in probe
    assert probe["deploy"]["resources"]["limits"] == {"cpus": "0.1", "memory": "16M", "pids": 1024}
    assert exported["networks"] == {"private": {"driver": "overlay"}}
    assert exported["volumes"] == {"site": {}}
    assert exported["secrets"] == {"api_token": {"file": "./secrets/api_token"}}


def assert_no_agora_labels(text: str, deployment: str) -> None:
    assert "agora." not in text.replace("Agora deployment", "")
    assert f"agora-{deployment}" not in text


@needs_swarm
def test_a_swarm_deployment_exports_to_a_compose_file_that_runs_as_a_stack(
    deployments: Deployments, stacks: Stacks, tmp_path: Path
) -> None:
    target = make_target(Target.Mode.SWARM)
    deployment = deployments.new(target)
    port = deploy(target, deployment, specs())

    text = export_compose(target, deployment)

    assert text.startswith(f"# Agora deployment {deployment} on target {target.name}, as a compose file.\n")
    assert "# Secret values are not exported" in text and "./secrets/api_token" in text
    assert_no_agora_labels(text, deployment)
    exported = yaml.safe_load(text)
    check_service_definitions(exported, port)
    assert exported["services"]["web"]["cap_drop"]  # crane's hardening travels with the export
    assert exported["services"]["web"]["deploy"]["restart_policy"] == {"condition": "any", "delay": "2s"}

    # Elsewhere: the Agora deployment is gone, the stack takes its place on the same port.
    driver.remove_deployment(target, deployment)
    name = deploy_export(text, tmp_path, stacks, {"api_token": b"s3cret-token\n"})
    wait_stack_running(name, 2)
    assert http_get(f"http://127.0.0.1:{port}/", timeout=30).strip() == "hello web"
    # The probe is healthy only once it reached web by name on the stack's network.
    deadline = time.monotonic() + 30
    while "(healthy)" not in docker("ps", "--filter", f"name={name}_probe", "--format", "{{.Status}}").stdout:
        assert time.monotonic() < deadline, "the stack's probe never reached web by name"
        time.sleep(0.5)
    secret = docker("secret", "ls", "--filter", f"name={name}_api_token", "--format", "{{.Name}}").stdout.strip()
    assert secret == f"{name}_api_token"


def test_an_engine_deployment_exports_to_a_compose_file_that_runs_as_a_stack(
    deployments: Deployments, stacks: Stacks, tmp_path: Path
) -> None:
    target = make_target(Target.Mode.ENGINE)
    deployment = deployments.new(target)
    port = deploy(target, deployment, specs())

    text = export_compose(target, deployment)

    assert_no_agora_labels(text, deployment)
    exported = yaml.safe_load(text)
    # Engine containers carry the image's settings merged in; the export keeps only what Agora set.
    check_service_definitions(exported, port)
    assert exported["services"]["web"]["deploy"]["restart_policy"] == {"condition": "any"}
    if not SWARM:
        return
    driver.remove_deployment(target, deployment)
    name = deploy_export(text, tmp_path, stacks, {"api_token": b"s3cret-token\n"})
    wait_stack_running(name, 2)
    assert http_get(f"http://127.0.0.1:{port}/", timeout=30).strip() == "hello web"


@needs_swarm
def test_replicas_a_built_image_and_an_unused_volume_are_exported(deployments: Deployments, tmp_path: Path) -> None:
    target = make_target(Target.Mode.SWARM)
    deployment = deployments.new(target)
    driver.ensure_network(target, deployment)
    driver.ensure_volume(target, deployment, "spare")
    (tmp_path / "Dockerfile").write_text(f"FROM {BUSYBOX}\nLABEL org.example.built=yes\n")
    image = driver.ensure_image(target, deployment, "app", build=BuildContext(directory=tmp_path)).name
    spec = web("web", image=image, replicas=2, ports=(Port(80), Port(5353, "udp")))
    driver.ensure_services(target, deployment, [spec])

    text = export_compose(target, deployment)

    assert (
        f"# Agora built these images on the target; push them to a registry the swarm can reach:\n#   {image}\n" in text
    )
    exported = yaml.safe_load(text)
    front = exported["services"]["web"]
    assert front["image"] == image
    assert front["deploy"]["replicas"] == 2
    assert [(p["target"], p["protocol"]) for p in front["ports"]] == [(80, "tcp"), (5353, "udp")]
    assert exported["volumes"] == {"spare": {}}
    assert "secrets" not in exported


def test_a_deployment_with_nothing_on_the_target_is_reported() -> None:
    target = make_target(Target.Mode.SWARM if SWARM else Target.Mode.ENGINE)
    with pytest.raises(DeploymentNotFound, match="has no services, volumes or secrets of deployment"):
        export_compose(target, new_deployment_id())
