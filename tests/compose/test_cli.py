"""`manage.py compose import FILE` and `manage.py compose export DEPLOYMENT_ID`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from crane import driver
from crane.models import Target
from orchestrator.models import Deployment
from orchestrator.tosca import validate_bytes
from tests.compose.conftest import Deployments
from tests.crane.conftest import DOCKER, SWARM, make_target, web

GOOD = """\
services:
  web:
    image: nginx:1.25
    ports: ["8080:80"]
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 128M}
"""

BAD = """\
services:
  web:
    image: nginx:1.25
    privileged: true
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
networks:
  outside:
    external: true
"""


def run(*args: str) -> tuple[str, str, CommandError | None]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("compose", *args, stdout=out, stderr=err, no_color=True)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def test_import_prints_a_template_agora_accepts_and_the_warnings_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text(GOOD)
    out, err, error = run("import", str(path), "--name", "hello")
    assert error is None
    report = validate_bytes(out.encode(), filename="service.yaml")
    assert report.valid and report.deployable
    assert yaml.safe_load(out)["metadata"]["template_name"] == "hello"
    assert err.splitlines() == [
        f"{path}: service web: ports: warning: Agora publishes ports on host ports it picks from the target's pool; "
        "the host side (8080) is dropped. Subscribers find the service at its URL output."
    ]


def test_import_of_what_agora_refuses_prints_every_reason_and_fails(tmp_path: Path) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text(BAD)
    out, err, error = run("import", str(path))
    assert out == ""
    assert error is not None and error.returncode == 1
    assert str(error) == f"{path}: Agora cannot deploy this compose file (3 problems)."
    lines = [line for line in err.splitlines() if ": warning: " not in line]
    assert lines == [
        f"{path}: service web: privileged: privileged mode hands the container the whole Docker host; Agora never "
        "grants it. Remove privileged.",
        f"{path}: service web: volumes[0]: The Docker socket gives control over the whole host; Agora never mounts "
        "it. Remove the mount.",
        f"{path}: networks.outside.external: A network made outside the deployment would join it to other tenants' "
        "services; remove external: Agora gives each deployment its own network.",
    ]


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "cannot be read"), (b"\xff\xfe services", "not UTF-8"), (b"#" * (1024 * 1024 + 1), "larger than")],
)
def test_import_of_an_unreadable_file_says_why(tmp_path: Path, content: bytes | None, words: str) -> None:
    path = tmp_path / "docker-compose.yml"
    if content is not None:
        path.write_bytes(content)
    _, _, error = run("import", str(path))
    assert error is not None and error.returncode == 1
    assert words in str(error)


@pytest.mark.django_db
def test_export_to_an_unknown_target_names_the_known_ones() -> None:
    Target.objects.create(name="cloud-a", public_host="a.example.org", endpoint="unix:///nowhere.sock")
    _, _, error = run("export", "d1", "--target", "cloud-b")
    assert error is not None and error.returncode == 1
    assert str(error) == "No target named 'cloud-b'; the targets are: cloud-a."


@pytest.mark.django_db
@pytest.mark.docker
@pytest.mark.skipif(not DOCKER, reason="no Docker daemon answers at DOCKER_HOST or the default socket")
def test_export_prints_the_deployment_as_a_compose_file(deployments: Deployments) -> None:
    target = make_target(Target.Mode.SWARM if SWARM else Target.Mode.ENGINE)
    deployment = deployments.new(target)
    driver.ensure_network(target, deployment)
    driver.ensure_services(target, deployment, [web("web")])
    out, _, error = run("export", deployment, "--target", target.name)
    assert error is None
    assert list(yaml.safe_load(out)["services"]) == ["web"]


@pytest.mark.django_db
@pytest.mark.docker
@pytest.mark.skipif(not DOCKER, reason="no Docker daemon answers at DOCKER_HOST or the default socket")
@pytest.mark.parametrize(
    ("deployment", "words"),
    [("nothing-here", "has no services, volumes or secrets of deployment nothing-here"), ("Bad Id!", "cannot name")],
)
def test_export_of_a_deployment_the_target_does_not_have_says_so(deployment: str, words: str) -> None:
    make_target(Target.Mode.SWARM if SWARM else Target.Mode.ENGINE)  # the default target: the oldest one
    _, _, error = run("export", deployment)
    assert error is not None and error.returncode == 1
    assert words in str(error)


@pytest.mark.django_db
@pytest.mark.docker
@pytest.mark.skipif(not DOCKER, reason="no Docker daemon answers at DOCKER_HOST or the default socket")
def test_export_reads_a_deployment_agora_made_from_its_own_target(deployments: Deployments) -> None:
    # The default target (the oldest) does not answer: only the deployment's own target can.
    Target.objects.create(name="gone", public_host="gone.example.org", endpoint="unix:///nonexistent/docker.sock")
    target = make_target(Target.Mode.SWARM if SWARM else Target.Mode.ENGINE)
    deployment = deployments.new(target)
    Deployment.objects.create(id=deployment, target=target, template=b"", template_filename="t.yaml")
    driver.ensure_network(target, deployment)
    driver.ensure_volume(target, deployment, "data")
    out, _, error = run("export", deployment)
    assert error is None, error
    assert yaml.safe_load(out)["volumes"] == {"data": {}}
