"""Agora's own plain data about a TOSCA template: what validation returns.

Frozen dataclasses only; nothing here knows about tosca-parser, Django or files.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class Limits:
    """What one validation may cost; every hostile file hits one of these first.

    The defaults serve this package's own callers (tests, benches); Agora itself reads every template
    with orchestrator.limits.template_limits(), made from the settings."""

    max_bytes: int = 20 * 1024 * 1024  # a single YAML or a whole CSAR file
    max_uncompressed_bytes: int = 100 * 1024 * 1024  # CSAR total after unzip
    max_compression_ratio: int = 100  # per entry and overall
    max_entries: int = 2000  # CSAR members
    max_yaml_aliases: int = 100  # alias (*ref) uses per YAML document
    max_yaml_nodes: int = 200_000  # YAML nodes after alias expansion
    max_yaml_depth: int = 64  # nesting depth
    max_node_templates: int = 500

    def too_large(self, size: int | None) -> str:
        """The one sentence refusing a template or CSAR above max_bytes, wherever it is read; `size` None when
        only "more than max_bytes" is known. Sizes that would round to the same figure are given in bytes."""
        limit = human_size(self.max_bytes)
        if size is None:
            return f"The file is larger than {limit}; Agora accepts templates and CSARs up to {limit}."
        shown = human_size(size)
        if shown == limit:
            shown, limit = f"{size:,} bytes", f"{self.max_bytes:,} bytes"
        return f"The file is {shown}; Agora accepts templates and CSARs up to {limit}."


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class ProblemKind(StrEnum):
    TOSCA = "tosca"  # the template is not valid TOSCA (or could not be read at all)
    SUPPORT = "support"  # valid TOSCA that Agora cannot deploy
    POLICY = "policy"  # what Agora's security rules forbid


@dataclass(frozen=True)
class Problem:
    severity: Severity
    kind: ProblemKind
    message: str
    file: str | None
    line: int | None
    node: str | None
    property: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": str(self.severity),
            "kind": str(self.kind),
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "node": self.node,
            "property": self.property,
        }


@dataclass(frozen=True)
class Metadata:
    template_name: str | None = None
    template_version: str | None = None
    template_author: str | None = None
    description: str | None = None
    tosca_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "template_name": self.template_name,
            "template_version": self.template_version,
            "template_author": self.template_author,
            "description": self.description,
            "tosca_version": self.tosca_version,
        }


@dataclass(frozen=True)
class Input:
    name: str
    type: str
    description: str = ""
    default: Any = None
    has_default: bool = False
    constraints: tuple[Mapping[str, Any], ...] = ()
    required: bool = True
    secret: bool = False
    entry_schema: str | None = None
    line: int | None = None

    def schema(self) -> dict[str, Any]:
        """The JSON form a subscription form is generated from; a secret's default never leaves."""
        return {
            "type": self.type,
            "description": self.description,
            "default": None if self.secret else json_safe(self.default),
            "has_default": self.has_default,
            "constraints": [json_safe(dict(c)) for c in self.constraints],
            "required": self.required,
            "secret": self.secret,
        }


@dataclass(frozen=True)
class Requirement:
    name: str
    target: str | None  # a node template's name
    relationship: str | None  # the relationship type, resolved to its full name when known
    capability: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)  # of the relationship
    relationship_template: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "target": self.target, "relationship": self.relationship}


@dataclass(frozen=True)
class Artifact:
    name: str
    type: str | None
    file: str | None  # a path in the CSAR, or for Docker images an image reference
    deploy_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "file": self.file}


@dataclass(frozen=True)
class Operation:
    interface: str  # as written: Standard, tosca.interfaces.node.lifecycle.Standard, ...
    name: str  # create, configure, start, ...
    implementation: str | None  # a script path or an artifact name
    dependencies: tuple[str, ...] = ()
    inputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeTemplate:
    name: str
    type: str
    types: tuple[str, ...]  # the type and its ancestors, nearest first; empty when the type is unknown
    properties: Mapping[str, Any] = field(default_factory=dict)
    requirements: tuple[Requirement, ...] = ()
    artifacts: tuple[Artifact, ...] = ()
    operations: tuple[Operation, ...] = ()
    capabilities: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    line: int | None = None

    def is_a(self, type_name: str) -> bool:
        return type_name in self.types

    def to_dict(self) -> dict[str, Any]:
        # Property values stay out: a publisher may have written credentials in them.
        return {
            "name": self.name,
            "type": self.type,
            "properties": sorted(str(k) for k in self.properties),
            "requirements": [r.to_dict() for r in self.requirements],
            "artifacts": [a.to_dict() for a in self.artifacts],
            "line": self.line,
        }


@dataclass(frozen=True)
class Output:
    name: str
    description: str
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "value": json_safe(self.value)}


@dataclass(frozen=True)
class Template:
    metadata: Metadata
    inputs: tuple[Input, ...] = ()
    nodes: tuple[NodeTemplate, ...] = ()
    outputs: tuple[Output, ...] = ()
    file: str | None = None  # the entry file: the upload's name, or the member path in a CSAR

    def node(self, name: str) -> NodeTemplate | None:
        return next((n for n in self.nodes if n.name == name), None)

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)


_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1}
_KIND_ORDER = {ProblemKind.TOSCA: 0, ProblemKind.SUPPORT: 1, ProblemKind.POLICY: 2}


@dataclass(frozen=True)
class Report:
    valid: bool  # the TOSCA verdict alone (no error of kind tosca, and the file could be read)
    deployable: bool  # valid and no error of kind support or policy
    problems: tuple[Problem, ...]
    template: Template | None  # None when the file could not be parsed

    @classmethod
    def from_problems(cls, problems: list[Problem], template: Template | None) -> Report:
        """Orders the problems (errors first, tosca before support before policy) and derives the verdicts."""
        unique = list(dict.fromkeys(problems))
        unique.sort(
            key=lambda p: (_SEVERITY_ORDER[p.severity], _KIND_ORDER[p.kind], p.file or "", p.line or 0, p.message)
        )
        errors = [p for p in unique if p.severity is Severity.ERROR]
        valid = template is not None and not any(p.kind is ProblemKind.TOSCA for p in errors)
        return cls(valid=valid, deployable=valid and not errors, problems=tuple(unique), template=template)

    def inputs_schema(self) -> dict[str, dict[str, Any]]:
        if self.template is None:
            return {}
        return {i.name: i.schema() for i in self.template.inputs}

    def to_dict(self) -> dict[str, Any]:
        tpl = self.template
        return {
            "valid": self.valid,
            "deployable": self.deployable,
            "problems": [p.to_dict() for p in self.problems],
            "inputs": self.inputs_schema(),
            "metadata": json_safe(tpl.metadata.to_dict()) if tpl else {},
            "nodes": [json_safe(n.to_dict()) for n in tpl.nodes] if tpl else [],
            "outputs": [o.to_dict() for o in tpl.outputs] if tpl else [],
        }


def human_size(n: int) -> str:
    """Sizes in messages: 20 MiB, 1.5 MiB, 300 KiB, 12 bytes."""
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def json_safe(value: Any) -> Any:
    """YAML gives dates and non-string keys; JSON takes neither."""
    if isinstance(value, str | bool | int | type(None)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    return str(value)
