"""Helpers of the compose tests: every template an import returns must pass Agora's own validation."""

from __future__ import annotations

import io
import textwrap
import zipfile
from typing import Any

import yaml

from orchestrator.compose import ComposeImport, ComposeProblem, compose_to_tosca
from orchestrator.tosca import Severity, validate_bytes


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
