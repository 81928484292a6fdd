"""Check the files a template's artifacts and scripts point at.

Artifacts and operation implementations are paths relative to the template
file: inside the CSAR, or under the root folder for the CLI. URLs and absolute
paths are refused (Agora never fetches or reads host files for a template); a
single uploaded YAML has no files at all. Docker image artifacts are image
references, not paths.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.tosca.model import NodeTemplate, Problem, ProblemKind, Severity, Template
from orchestrator.tosca.registry import TypeRegistry
from orchestrator.tosca.safe_yaml import YamlDocument
from orchestrator.tosca.sources import Scope

DOCKER_IMAGE = "tosca.artifacts.Deployment.Image.Container.Docker"
BUILD_CONTEXT = "agora.artifacts.BuildContext"
# scheme://..., or the forms without slashes that still reach outside: file:/etc/x, data:...
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://|file:|data:)", re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


@dataclass(frozen=True)
class _Reference:
    what: str  # for the message: 'the artifact "image"', 'the create script'
    path: str
    folder: bool  # a build context is a folder
    yaml_path: tuple[Any, ...]


def check_artifact_files(
    template: Template, registry: TypeRegistry, scope: Scope, document: YamlDocument
) -> list[Problem]:
    problems: list[Problem] = []
    for node in template.nodes:
        for ref in _references(node, registry):
            problem = _check(ref, scope)
            if problem is not None:
                kind, message = problem
                line = document.line("topology_template", "node_templates", node.name, *ref.yaml_path)
                problems.append(
                    Problem(
                        Severity.ERROR,
                        kind,
                        f'Node template "{node.name}": {message}',
                        scope.main_name,
                        line,
                        node.name,
                    )
                )
    return problems


def _references(node: NodeTemplate, registry: TypeRegistry) -> Iterator[_Reference]:
    names = {a.name for a in node.artifacts}
    for artifact in node.artifacts:
        if artifact.file is None or registry.is_a(artifact.type, DOCKER_IMAGE, "artifact_types"):
            continue
        if artifact.type is not None and not registry.ancestors(artifact.type, "artifact_types"):
            continue  # an undefined type is its own problem (support); what its file means is unknown
        yield _Reference(
            f'the artifact "{artifact.name}"',
            artifact.file,
            registry.is_a(artifact.type, BUILD_CONTEXT, "artifact_types"),
            ("artifacts", artifact.name),
        )
    for op in node.operations:
        for path in (op.implementation, *op.dependencies):
            if path and path not in names:  # an artifact's name is checked as that artifact
                yield _Reference(f"the {op.name} script", path, False, ("interfaces", op.interface, op.name))


def _check(ref: _Reference, scope: Scope) -> tuple[ProblemKind, str] | None:
    path = ref.path
    if _URL.match(path) and not _DRIVE.match(path):
        return ProblemKind.POLICY, (
            f"{ref.what} is the URL {path!r}; Agora never downloads artifacts. Put the file in the CSAR and refer "
            "to it by a relative path."
        )
    if path.startswith(("/", "\\", "~")) or _DRIVE.match(path):
        return ProblemKind.POLICY, (
            f"{ref.what} is the absolute path {path!r}; Agora reads files only from inside the CSAR. Use a path "
            "relative to the template."
        )
    if scope.kind == "upload" or scope.main_path is None or scope.root is None:
        return ProblemKind.SUPPORT, (
            f"{ref.what} is the file {path!r}, but a single uploaded YAML carries no files; upload a CSAR that "
            "contains it."
        )
    candidate = Path(os.path.normpath(scope.main_path.parent / path))
    resolved = candidate.resolve()
    if not candidate.is_relative_to(scope.root) or not resolved.is_relative_to(scope.root):
        return ProblemKind.POLICY, f"{ref.what} {path!r} points outside {scope.where}."
    if ref.folder:
        if not resolved.is_dir():
            return ProblemKind.TOSCA, f"{ref.what} names the folder {path!r}, which is not in {scope.where}."
        if not (resolved / "Dockerfile").is_file():
            return ProblemKind.SUPPORT, f"{ref.what}: the build folder {path!r} has no Dockerfile."
        return None
    if not resolved.is_file():
        return ProblemKind.TOSCA, f"{ref.what} names the file {path!r}, which is not in {scope.where}."
    return None
