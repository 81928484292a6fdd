"""The driver-side security policy: what a node may ask of a Docker host.

The rules are pure and tested with plain specs; one Docker test proves that every
refusal happens before Docker sees anything.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from crane import driver, policy
from crane.errors import CapacityExceeded, InvalidSpec, PolicyViolation
from crane.models import PublishedPort, Target
from crane.specs import HealthCheck, Mount, Port, SecretMount, ServiceSpec
from tests.crane.conftest import MIB, Deployments, make_target, needs_docker, web


def _target(**fields: Any) -> Target:
    values: dict[str, Any] = {"name": "cloud", "public_host": "cloud.example.org", "endpoint": "tcp://h:2376"}
    values.update(fields)
    return Target(**values)


def _spec(**fields: Any) -> ServiceSpec:
    values: dict[str, Any] = {"name": "web", "image": "registry.example.org/team/app:1.2"}
    values.update(fields)
    return ServiceSpec(**values)


# Every setting the policy refuses, with the setting it must name.
FORBIDDEN: list[tuple[str, ServiceSpec, str]] = [
    ("privileged mode", _spec(options={"privileged": True}), "privileged"),
    ("host network", _spec(options={"network_mode": "host"}), "network_mode"),
    ("host PID", _spec(options={"pid_mode": "host"}), "pid_mode"),
    ("host IPC", _spec(options={"ipc_mode": "host"}), "ipc_mode"),
    ("bind mount", _spec(mounts=(Mount("/etc", "/host-etc"),)), "mounts"),
    ("relative bind mount", _spec(mounts=(Mount("./data", "/data"),)), "mounts"),
    ("docker socket", _spec(mounts=(Mount("/var/run/docker.sock", "/var/run/docker.sock"),)), "mounts"),
    ("devices", _spec(options={"devices": ["/dev/sda:/dev/sda"]}), "devices"),
    ("added capabilities", _spec(options={"cap_add": ["SYS_ADMIN"]}), "cap_add"),
    ("security options", _spec(options={"security_opt": ["seccomp=unconfined"]}), "security_opt"),
    ("sysctls", _spec(options={"sysctls": {"net.ipv4.ip_forward": "1"}}), "sysctls"),
    ("user namespace", _spec(options={"userns_mode": "host"}), "userns_mode"),
    ("cgroup parent", _spec(options={"cgroup_parent": "/"}), "cgroup_parent"),
    ("placement on managers", _spec(options={"constraints": ["node.role==manager"]}), "constraints"),
    ("placement", _spec(options={"placement": {"constraints": ["node.role==manager"]}}), "placement"),
    ("reserved label", _spec(labels={"agora.deployment": "someone-else"}), "labels.agora.deployment"),
    ("docker label", _spec(labels={"com.docker.stack.namespace": "x"}), "labels.com.docker.stack.namespace"),
    ("logging options", _spec(options={"log_driver": "syslog"}), "log_driver"),
    ("logging", _spec(options={"logging": {"driver": "syslog"}}), "logging"),
    ("an unknown setting", _spec(options={"oom_kill_disable": True}), "oom_kill_disable"),
    ("a setting Agora never heard of", _spec(options={"frobnicate": 1}), "frobnicate"),
    ("CPU above the target's capacity", _spec(cpu_limit=4.0), "cpu_limit"),
    ("memory above the target's capacity", _spec(memory_limit=2048 * MIB), "memory_limit"),
    ("memory below Docker's minimum", _spec(memory_limit=1024), "memory_limit"),
    ("reservation above the limit", _spec(cpu_limit=0.5, cpu_reservation=1.0), "cpu_reservation"),
    ("image reference", _spec(image="Not An Image!"), "image"),
    ("port number", _spec(ports=(Port(70000),)), "ports"),
    ("port protocol", _spec(ports=(Port(80, "sctp"),)), "ports"),
    ("environment name", _spec(environment={"1BAD": "x"}), "environment.1BAD"),
    ("secret file outside /run/secrets", _spec(secrets=(SecretMount("token", "../etc/passwd"),)), "secrets"),
    ("mount over /proc", _spec(mounts=(Mount("data", "/proc/sys"),)), "mounts"),
    ("replicas", _spec(replicas=1000), "replicas"),
    ("health check", _spec(healthcheck=HealthCheck(test=("sh", "-c", "true"))), "healthcheck.test"),
    ("node name", _spec(name="web/../../x"), "name"),
]
CAPPED = {"max_cpus": 2.0, "max_memory": 1024 * MIB}


@pytest.mark.parametrize(("what", "spec", "setting"), FORBIDDEN, ids=[f[0] for f in FORBIDDEN])
def test_forbidden_setting_is_refused_naming_node_and_setting(what: str, spec: ServiceSpec, setting: str) -> None:
    with pytest.raises(PolicyViolation) as caught:
        policy.check_service(spec, target=_target(**CAPPED), deployment="d1")
    assert caught.value.node == spec.name
    assert caught.value.setting == setting
    assert caught.value.transient is False
    assert f'Node "{spec.name}"' in caught.value.message and setting in caught.value.message


def test_allowed_spec_gets_limits_from_the_target_then_agoras_defaults(settings: Any) -> None:
    settings.CRANE_DEFAULT_CPUS = 1.5
    settings.CRANE_DEFAULT_MEMORY = 256 * MIB
    spec = _spec(
        command=("serve", "--port", "8080"),
        environment={"MODE": "production"},
        ports=(Port(8080), Port(53, "udp")),
        mounts=(Mount("data", "/var/lib/app", read_only=True),),
        secrets=(SecretMount("db-password", "db_password"),),
        labels={"org.example.team": "forms"},
        healthcheck=HealthCheck(test=("CMD-SHELL", "wget -q -O- localhost:8080/health"), interval=5),
        options={"user": "1000:1000", "read_only": True, "init": True, "stop_grace_period": 20, "working_dir": "/app"},
    )
    assert policy.check_service(spec, target=_target(), deployment="d1").cpu_limit == 1.5
    assert policy.check_service(spec, target=_target(), deployment="d1").memory_limit == 256 * MIB
    own_defaults = _target(default_cpus=0.5, default_memory=128 * MIB)
    checked = policy.check_service(spec, target=own_defaults, deployment="d1")
    assert (checked.cpu_limit, checked.memory_limit) == (0.5, 128 * MIB)
    capped = policy.check_service(spec, target=_target(max_cpus=1.0, max_memory=64 * MIB), deployment="d1")
    assert (capped.cpu_limit, capped.memory_limit) == (1.0, 64 * MIB)
    assert dataclasses.replace(checked, cpu_limit=None, memory_limit=None) == spec


def test_all_violations_are_reported_together() -> None:
    spec = _spec(options={"privileged": True, "cap_add": ["ALL"]}, labels={"agora.node": "x"})
    with pytest.raises(PolicyViolation) as caught:
        policy.check_service(spec, target=_target(), deployment="d1")
    assert [d["setting"] for d in caught.value.details] == ["labels.agora.node", "privileged", "cap_add"]


@pytest.mark.parametrize(
    "reference",
    ["busybox", "busybox:latest", "agora/busybox:latest", "registry.example.org:5000/team/app:1.2-rc1", "a/b/c",
     "localhost:5000/app@sha256:" + "a" * 64, "ghcr.io/org/app_name.sub:v1"],
)  # fmt: skip
def test_image_references_accepted(reference: str) -> None:
    assert policy.IMAGE_REFERENCE.match(reference)


@pytest.mark.parametrize(
    "reference", ["", "Busybox", "busybox:", "-x", "a//b", "app:tag with space", "app:;rm -rf /", "/etc/passwd"]
)
def test_image_references_refused(reference: str) -> None:
    assert not policy.IMAGE_REFERENCE.match(reference)


def test_bad_deployment_id_is_refused() -> None:
    with pytest.raises(InvalidSpec, match="Deployment id"):
        policy.check_service(_spec(), target=_target(), deployment="Bad_Id")


@pytest.mark.docker
@needs_docker
def test_every_forbidden_setting_is_refused_before_docker_sees_it(
    target: Target, deployments: Deployments, raw: Any
) -> None:
    target.max_cpus, target.max_memory = CAPPED["max_cpus"], CAPPED["max_memory"]
    target.save()
    deployment = deployments.new(target)
    network = driver.ensure_network(target, deployment)
    for what, spec, setting in FORBIDDEN:
        runnable = dataclasses.replace(spec, image="agora/busybox:latest") if setting != "image" else spec
        with pytest.raises(PolicyViolation) as caught:
            driver.ensure_services(target, deployment, [web("fine", ports=(Port(80),)), runnable])
        assert caught.value.setting == setting, what
    objects = driver.list_objects(target, deployment)
    assert objects.networks == (network.name,)
    assert objects.services == objects.containers == objects.volumes == objects.secrets == ()
    assert raw.api.containers(all=True, filters={"label": f"agora.deployment={deployment}"}) == []
    assert not PublishedPort.objects.filter(target=target, deployment=deployment).exists()


@pytest.mark.docker
@needs_docker
def test_target_capacity_is_enforced_across_deployments(db: None, deployments: Deployments) -> None:
    target = make_target(Target.Mode.ENGINE, max_services=2, max_cpus=1.0)
    first, second = deployments.new(target), deployments.new(target)
    for deployment in (first, second):
        driver.ensure_network(target, deployment)
    driver.ensure_services(target, first, [web("a", ports=(), cpu_limit=0.5), web("b", ports=(), cpu_limit=0.25)])
    with pytest.raises(CapacityExceeded, match="room for 2 services"):
        driver.ensure_service(target, second, web("c", ports=(), cpu_limit=0.1))
    # Updating a service of the first deployment is within capacity, while growing past the CPUs is not.
    driver.ensure_service(target, first, web("b", ports=(), cpu_limit=0.5))
    with pytest.raises(CapacityExceeded, match="CPUs"):
        driver.ensure_service(target, first, web("b", ports=(), cpu_limit=0.75))
    assert driver.list_objects(target, second).containers == ()
