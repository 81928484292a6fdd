"""Helpers of the compose tests.

Every template an import returns must pass Agora's own validation. Export tests make
deployments with crane's driver and stacks with the docker CLI, under unique names,
and remove both at the end of the test whatever happened.
"""

from __future__ import annotations

import io
import subprocess
import textwrap
import time
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from orchestrator.compose import ComposeImport, ComposeProblem, compose_to_tosca
from orchestrator.tosca import Severity, validate_bytes

# Fixtures shared with the crane and engine tests.
from tests.crane.conftest import Deployments, deployments  # noqa: F401
from tests.engine.conftest import cleanup, queue_name, swarm  # noqa: F401


def accepted(text: str, **kwargs: Any) -> tuple[dict[str, Any], ComposeImport]:
    """The imported template as data, after checking that Agora finds it valid and deployable."""
    result = compose_to_tosca(textwrap.dedent(text), **kwargs)
    assert result.errors == (), [p.format("compose.yml") for p in result.errors]
    assert result.template is not None
    if result.build_contexts:
        # A built image travels in a CSAR: the template next to its build folders.
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("service.yaml", result.template)
            for folder in result.build_contexts:
                archive.writestr(f"{folder}/Dockerfile", "FROM agora/busybox:latest\n")
        report = validate_bytes(buffer.getvalue(), filename="service.csar")
    else:
        report = validate_bytes(result.template.encode(), filename="service.yaml")
    assert report.valid and report.deployable, [p.message for p in report.problems]
    assert report.problems == ()
    return yaml.safe_load(result.template), result


def refused(text: str) -> tuple[ComposeProblem, ...]:
    result = compose_to_tosca(textwrap.dedent(text))
    assert result.template is None
    assert result.errors
    return result.errors


def node(template: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(template["topology_template"]["node_templates"][name])


def props(template: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(node(template, name).get("properties") or {})


def inputs(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["topology_template"].get("inputs") or {})


def warnings_about(result: ComposeImport, key: str) -> list[str]:
    return [p.message for p in result.problems if p.severity is Severity.WARNING and p.key == key]


# --- export: real deployments and stacks


def docker(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout)


class Stacks:
    """Stacks a test deploys, removed at its end with their volumes, whatever happened."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def new(self) -> str:
        name = "agoratest" + uuid.uuid4().hex[:10]
        self.names.append(name)
        return name

    def remove_all(self) -> None:
        for name in self.names:
            docker("stack", "rm", name, check=False)
        for name in self.names:
            # stack rm leaves volumes, and removes the rest in the background: wait for it, a bounded while.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                left = docker("ps", "-aq", "--filter", f"label=com.docker.stack.namespace={name}", check=False)
                volumes = docker("volume", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={name}")
                networks = docker("network", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={name}")
                for volume in volumes.stdout.split():
                    docker("volume", "rm", volume, check=False)
                if not left.stdout.strip() and not volumes.stdout.strip() and not networks.stdout.strip():
                    break
                time.sleep(0.3)


@pytest.fixture
def stacks() -> Iterator[Stacks]:
    made = Stacks()
    yield made
    made.remove_all()
