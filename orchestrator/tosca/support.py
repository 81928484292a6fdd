"""What Agora can deploy: valid TOSCA outside this is a `support` problem.

Agora deploys:
- its profile's types: agora.nodes.Container (from an image or a build
  artifact), agora.nodes.Volume and agora.nodes.Secret;
- tosca.nodes.Container.Application.Docker with a
  tosca.artifacts.Deployment.Image.Container.Docker artifact (an image
  reference such as nginx:1.25), hosted on a tosca.nodes.Container.Runtime,
  which stands for the target's Docker engine (itself hosted on a Compute, the
  target's host);
- tosca.nodes.Compute (a container from a base image) with software components
  HostedOn it, whose Standard lifecycle operations are scripts;
- the relationships DependsOn, ConnectsTo, HostedOn and Agora's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from orchestrator.tosca.model import NodeTemplate, Problem, ProblemKind, Severity, Template
from orchestrator.tosca.registry import TypeRegistry
from orchestrator.tosca.safe_yaml import YamlDocument
from orchestrator.tosca.sources import AGORA_PROFILE_IMPORT, Sources

AGORA_CONTAINER = "agora.nodes.Container"
AGORA_VOLUME = "agora.nodes.Volume"
AGORA_SECRET = "agora.nodes.Secret"  # noqa: S105  # a type name
BUILD_CONTEXT = "agora.artifacts.BuildContext"
DOCKER_APP = "tosca.nodes.Container.Application.Docker"
DOCKER_IMAGE = "tosca.artifacts.Deployment.Image.Container.Docker"
RUNTIME = "tosca.nodes.Container.Runtime"
COMPUTE = "tosca.nodes.Compute"
SOFTWARE = (
    "tosca.nodes.SoftwareComponent",
    "tosca.nodes.WebServer",
    "tosca.nodes.WebApplication",
    "tosca.nodes.DBMS",
    "tosca.nodes.Database",
)
IMPLEMENTATION = "tosca.artifacts.Implementation"
SCRIPT_SUFFIXES = (".sh", ".bash", ".py")
HOSTED_ON = "tosca.relationships.HostedOn"
SUPPORTED_RELATIONSHIPS = (
    "tosca.relationships.DependsOn",
    "tosca.relationships.ConnectsTo",
    HOSTED_ON,
    "agora.relationships.MountsVolume",
    "agora.relationships.UsesSecret",
)
# Derived from supported ones, but about networks and load balancers Agora does not model.
UNSUPPORTED_RELATIONSHIPS = (
    "tosca.relationships.network.LinksTo",
    "tosca.relationships.network.BindsTo",
    "tosca.relationships.RoutesTo",
)
STANDARD = ("Standard", "tosca.interfaces.node.lifecycle.Standard")
MAIN_VERSIONS = ("tosca_simple_yaml_1_0", "tosca_simple_yaml_1_2", "tosca_simple_yaml_1_3")
WHAT_AGORA_DEPLOYS = (
    f"Agora deploys {AGORA_CONTAINER}, {AGORA_VOLUME} and {AGORA_SECRET} (imports: [{AGORA_PROFILE_IMPORT}]), "
    f"{DOCKER_APP} with a Docker image artifact, and {COMPUTE} with software components hosted on it"
)

_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?/)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"^{_DOMAIN}{_COMPONENT}(?:/{_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?(?:@sha256:[a-f0-9]{{64}})?$"
)


def check_support(template: Template, sources: Sources, registry: TypeRegistry) -> list[Problem]:
    checker = _Checker(template, sources, registry)
    return list(checker.run())


class _Checker:
    def __init__(self, template: Template, sources: Sources, registry: TypeRegistry) -> None:
        self.template = template
        self.sources = sources
        self.registry = registry
        self.document: YamlDocument = sources.main.document
        self.file = sources.main.name
        self.nodes = {n.name: n for n in template.nodes}
        self._on_compute: dict[str, bool] = {}

    def error(self, message: str, node: str | None = None, *path: Any, prop: str | None = None) -> Problem:
        return self._problem(Severity.ERROR, message, node, path, prop)

    def warning(self, message: str, node: str | None = None, *path: Any) -> Problem:
        return self._problem(Severity.WARNING, message, node, path, None)

    def _problem(
        self, severity: Severity, message: str, node: str | None, path: tuple[Any, ...], prop: str | None
    ) -> Problem:
        if node is not None:
            line = self.document.line("topology_template", "node_templates", node, *path)
        else:
            line = self.document.line(*path) if path else None
        return Problem(severity, ProblemKind.SUPPORT, message, self.file, line, node, prop)

    def run(self) -> Iterator[Problem]:
        yield from self.template_level()
        for node in self.template.nodes:
            if not node.types:
                continue  # an unknown type is already a tosca problem
            yield from self.node(node)
            yield from self.relationships(node)
            yield from self.undeclared_inputs(node)
            yield from self.artifact_types(node)

    def template_level(self) -> Iterator[Problem]:
        data = self.document.data
        version = data.get("tosca_definitions_version")
        if isinstance(version, str) and version not in MAIN_VERSIONS and version.startswith("tosca_simple_profile"):
            yield self.error(
                f"The template uses the {version} profile; Agora deploys templates of {', '.join(MAIN_VERSIONS)}.",
                None,
                "tosca_definitions_version",
            )
        topology = data.get("topology_template")
        topology = topology if isinstance(topology, dict) else {}
        if topology.get("substitution_mappings") is not None:
            yield self.error(
                "The template has substitution_mappings; Agora deploys whole templates and does not substitute "
                "nodes with other templates. Remove them.",
                None,
                "topology_template",
                "substitution_mappings",
            )
        if topology.get("workflows") is not None:
            yield self.error(
                "The template has workflows; Agora does not run TOSCA workflows, it orders deployment by the "
                "requirements between nodes.",
                None,
                "topology_template",
                "workflows",
            )
        policies = topology.get("policies")
        if policies:
            yield self.error(
                "The template has policies; Agora does not apply TOSCA policies (placement, scaling...). Remove "
                "them; set replicas on the nodes instead.",
                None,
                "topology_template",
                "policies",
            )
        if topology.get("groups"):
            yield self.warning("Agora ignores the template's groups.", None, "topology_template", "groups")
        if not self.template.nodes:
            yield self.error(
                "The template has no node templates: there is nothing to deploy.", None, "topology_template"
            )
        for file in self.sources.imported.values():
            if isinstance(file.data.get("topology_template"), dict):
                yield Problem(
                    Severity.WARNING,
                    ProblemKind.SUPPORT,
                    f"The imported file {file.name} has a topology_template; Agora uses only the types an "
                    "imported file defines.",
                    file.name,
                    file.document.line("topology_template"),
                    None,
                )

    def node(self, node: NodeTemplate) -> Iterator[Problem]:
        if node.is_a(AGORA_CONTAINER):
            yield from self.container(node)
        elif node.is_a(AGORA_VOLUME) or node.is_a(AGORA_SECRET) or node.is_a(COMPUTE):
            return
        elif node.is_a(DOCKER_APP):
            yield from self.docker(node)
        elif node.is_a(RUNTIME):
            yield from self.runtime(node)
        elif any(node.is_a(t) for t in SOFTWARE):
            yield from self.software(node)
        else:
            yield self.error(
                f'Node template "{node.name}" has the type {node.type}, which Agora cannot deploy. '
                f"{WHAT_AGORA_DEPLOYS}.",
                node.name,
                "type",
            )

    def container(self, node: NodeTemplate) -> Iterator[Problem]:
        image = node.properties.get("image")
        builds = [a for a in node.artifacts if self.registry.is_a(a.type, BUILD_CONTEXT, "artifact_types")]
        if image is None and not builds:
            yield self.error(
                f'Node template "{node.name}" has neither an image property nor a build artifact '
                f"({BUILD_CONTEXT}); give it one so Agora knows what to run.",
                node.name,
                prop="image",
            )
        if isinstance(image, str) and not IMAGE_REFERENCE.match(image):
            yield self.error(
                f'Node template "{node.name}": the image "{image}" is not a Docker image reference '
                f"(such as nginx:1.25 or registry.example.org/team/app:2.0){_image_hint(image)}.",
                node.name,
                "properties",
                "image",
                prop="image",
            )
        yield from self.ignored_interfaces(node)

    def docker(self, node: NodeTemplate) -> Iterator[Problem]:
        images = [a for a in node.artifacts if self.registry.is_a(a.type, DOCKER_IMAGE, "artifact_types")]
        if not images or not images[0].file:
            yield self.error(
                f'Node template "{node.name}" ({DOCKER_APP}) has no {DOCKER_IMAGE} artifact; add one whose file '
                "is the image to run, such as nginx:1.25.",
                node.name,
                "artifacts",
            )
        elif not IMAGE_REFERENCE.match(images[0].file):
            yield self.error(
                f'Node template "{node.name}": the image "{images[0].file}" is not a Docker image reference '
                f"(such as nginx:1.25){_image_hint(images[0].file)}.",
                node.name,
                "artifacts",
                images[0].name,
            )
        for req in node.requirements:
            host = self.nodes.get(req.target or "")
            if req.name == "host" and host is not None and not (host.is_a(RUNTIME) or host.is_a(COMPUTE)):
                yield self.error(
                    f'Node template "{node.name}" is hosted on "{host.name}" ({host.type}); Agora runs Docker '
                    f"applications on a {RUNTIME}, which stands for the target's Docker engine.",
                    node.name,
                    "requirements",
                )
        yield from self.ignored_interfaces(node)

    def runtime(self, node: NodeTemplate) -> Iterator[Problem]:
        for other in self.template.nodes:
            for req in other.requirements:
                if req.target != node.name or not self._hosts(req.relationship):
                    continue
                if not (other.is_a(DOCKER_APP) or other.is_a(AGORA_CONTAINER)) and other.types:
                    yield self.error(
                        f'Node template "{other.name}" ({other.type}) is hosted on the Docker engine "{node.name}"; '
                        f"only Docker applications ({DOCKER_APP}) run there.",
                        other.name,
                        "requirements",
                    )

    def software(self, node: NodeTemplate) -> Iterator[Problem]:
        if not self.on_compute(node):
            yield self.error(
                f'Node template "{node.name}" ({node.type}) must be hosted (HostedOn) on a {COMPUTE}, directly or '
                "through other software components, for Agora to run its scripts.",
                node.name,
                "requirements",
            )
        lifecycle = [op for op in node.operations if op.interface in STANDARD and op.implementation]
        if not lifecycle:
            yield self.error(
                f'Node template "{node.name}" ({node.type}) has no Standard lifecycle script; Agora installs '
                "software components by running scripts: give create, configure or start an implementation "
                "(a .sh or .py file in the CSAR).",
                node.name,
                "interfaces",
            )
        artifacts = {a.name: a for a in node.artifacts}
        for op in lifecycle:
            impl = op.implementation or ""
            artifact = artifacts.get(impl)
            if artifact is not None:
                ok = self.registry.is_a(artifact.type, IMPLEMENTATION, "artifact_types") or (
                    artifact.file or ""
                ).endswith(SCRIPT_SUFFIXES)
            else:
                ok = impl.endswith(SCRIPT_SUFFIXES)
            if not ok:
                yield self.error(
                    f'Node template "{node.name}": the {op.name} operation runs "{impl}", which is not a script '
                    "Agora can run (a .sh or .py file in the CSAR).",
                    node.name,
                    "interfaces",
                )
        yield from self.ignored_interfaces(node)

    def host_of(self, node: NodeTemplate) -> str | None:
        host = next((r for r in node.requirements if r.name == "host" or self._hosts(r.relationship)), None)
        return host.target if host is not None else None

    def on_compute(self, node: NodeTemplate) -> bool:
        """Whether the node's chain of hosts ends at a Compute (memoised: chains can be long)."""
        seen: list[str] = []
        current: NodeTemplate | None = node
        result = False
        while current is not None:
            if current.name in self._on_compute:
                result = self._on_compute[current.name]
                break
            if current.name in seen:  # a loop of hosts
                break
            seen.append(current.name)
            target = self.nodes.get(self.host_of(current) or "")
            if target is not None and target.is_a(COMPUTE):
                result = True
                break
            current = target
        for name in seen:
            self._on_compute[name] = result
        return result

    def _hosts(self, relationship: str | None) -> bool:
        return relationship is not None and self.registry.is_a(relationship, HOSTED_ON, "relationship_types")

    def ignored_interfaces(self, node: NodeTemplate) -> Iterator[Problem]:
        for interface in sorted({op.interface for op in node.operations if op.interface not in STANDARD}):
            yield self.warning(
                f'Node template "{node.name}": Agora runs only the Standard lifecycle operations and ignores the '
                f"{interface} interface.",
                node.name,
                "interfaces",
                interface,
            )

    def relationships(self, node: NodeTemplate) -> Iterator[Problem]:
        for index, req in enumerate(node.requirements):
            rel = req.relationship
            if rel is None:
                continue
            ancestors = self.registry.ancestors(rel, "relationship_types")
            if not ancestors:
                # The parser lets an undefined relationship type pass; Agora could not set it up.
                yield self.error(
                    f'Node template "{node.name}": the requirement "{req.name}" uses the relationship type {rel}, '
                    "which is not defined; check the spelling (such as tosca.relationships.ConnectsTo).",
                    node.name,
                    "requirements",
                    _requirement_index(self.document, node.name, index),
                )
                continue
            if any(a in UNSUPPORTED_RELATIONSHIPS for a in ancestors) or not any(
                a in SUPPORTED_RELATIONSHIPS for a in ancestors
            ):
                yield self.error(
                    f'Node template "{node.name}": the requirement "{req.name}" uses the relationship {rel}, which '
                    f"Agora cannot set up; it supports {', '.join(SUPPORTED_RELATIONSHIPS)}.",
                    node.name,
                    "requirements",
                    _requirement_index(self.document, node.name, index),
                )

    def artifact_types(self, node: NodeTemplate) -> Iterator[Problem]:
        for artifact in node.artifacts:
            if artifact.type is not None and not self.registry.ancestors(artifact.type, "artifact_types"):
                yield self.error(
                    f'Node template "{node.name}": the artifact "{artifact.name}" has the type {artifact.type}, '
                    f"which is not defined; check the spelling (such as {DOCKER_IMAGE}).",
                    node.name,
                    "artifacts",
                    artifact.name,
                )

    def undeclared_inputs(self, node: NodeTemplate) -> Iterator[Problem]:
        """get_input nested in a list or map, where the parser does not look (it checks whole property values)."""
        declared = {i.name for i in self.template.inputs}
        for prop, value in node.properties.items():
            if _get_input(value) is not None:
                continue  # a whole value: the parser reports it
            for name in _nested_inputs(value, 0):
                if name not in declared:
                    yield self.error(
                        f'Node template "{node.name}": property "{prop}" asks for the input "{name}" (get_input), '
                        "which topology_template.inputs does not declare; declare it or fix the name.",
                        node.name,
                        "properties",
                        prop,
                        prop=str(prop),
                    )


def _image_hint(image: str) -> str:
    """Docker's most common refusal: capitals in the repository name (a tag may have them)."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        name, sep, tag = image, "", ""
    lowered = name.lower() + sep + tag
    return "; image names are lowercase" if lowered != image and IMAGE_REFERENCE.match(lowered) else ""


def _get_input(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1 and "get_input" in value:
        arg = value["get_input"]
        name = arg[0] if isinstance(arg, list) and arg else arg
        return name if isinstance(name, str) else None
    return None


def _nested_inputs(value: Any, depth: int) -> Iterator[str]:
    name = _get_input(value)
    if name is not None:
        yield name
    elif depth < 32 and isinstance(value, dict):
        for item in value.values():
            yield from _nested_inputs(item, depth + 1)
    elif depth < 32 and isinstance(value, list):
        for item in value:
            yield from _nested_inputs(item, depth + 1)


def _requirement_index(document: YamlDocument, node: str, ordinal: int) -> int:
    """The list index of the ordinal-th requirement (requirements flatten mappings of several keys)."""
    reqs: Any = document.data
    for key in ("topology_template", "node_templates", node, "requirements"):
        reqs = reqs.get(key) if isinstance(reqs, Mapping) else None
    if not isinstance(reqs, list):
        return 0
    seen = 0
    for index, item in enumerate(reqs):
        if isinstance(item, dict):
            seen += len(item)
            if seen > ordinal:
                return index
    return 0
