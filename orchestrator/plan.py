"""From a validated template and input values to a Plan: a DAG of steps, printable, deterministic.

Pure: no database, no Docker. Each node becomes steps (image, volume, secret,
service, lifecycle operations, wait-until-healthy) ordered by the template's
requirements; steps with no path between them may run in parallel. Values that
depend on other nodes' attributes (get_attribute) stay expressions until the step runs;
secret inputs stay expressions too, so a stored plan never holds a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.functions import Context, FunctionError, attribute_references, resolve
from orchestrator.inputs import InputError, check_input_values
from orchestrator.tosca.model import NodeTemplate, Template

CONTAINER = "agora.nodes.Container"
VOLUME = "agora.nodes.Volume"
SECRET = "agora.nodes.Secret"  # noqa: S105 - a type name
DOCKER_APP = "tosca.nodes.Container.Application.Docker"
RUNTIME = "tosca.nodes.Container.Runtime"
COMPUTE = "tosca.nodes.Compute"
SOFTWARE = ("tosca.nodes.SoftwareComponent", "tosca.nodes.WebApplication")  # WebApplication derives from Root
DOCKER_IMAGE_ARTIFACT = "tosca.artifacts.Deployment.Image.Container.Docker"
BUILD_ARTIFACT = "agora.artifacts.BuildContext"
HOSTED_ON = "tosca.relationships.HostedOn"
COMPUTE_IMAGE = "debian:bookworm-slim"
LIFECYCLE = ("create", "configure", "start")
NETWORK_STEP = "network"


class StepKind(StrEnum):
    NETWORK = "network"
    VOLUME = "volume"
    SECRET = "secret"  # noqa: S105 - a kind of step, not a password
    IMAGE = "image"
    SERVICE = "service"
    OPERATION = "operation"
    WAIT = "wait"
    REMOVE = "remove"


@dataclass(frozen=True)
class PlannedStep:
    key: str  # unique in the plan, such as "web.service"
    kind: StepKind
    node: str | None
    requires: tuple[str, ...]
    params: Mapping[str, Any]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": str(self.kind),
            "node": self.node,
            "requires": list(self.requires),
            "params": dict(self.params),
            "summary": self.summary,
        }


@dataclass(frozen=True)
class Plan:
    steps: tuple[PlannedStep, ...]
    outputs: Mapping[str, Any] = field(default_factory=dict)  # name → value or expression

    def step(self, key: str) -> PlannedStep:
        return next(s for s in self.steps if s.key == key)

    def levels(self) -> list[list[PlannedStep]]:
        """Steps grouped by how many steps must finish before them: each level's steps may run together."""
        depth: dict[str, int] = {}
        for step in self.steps:  # steps are in a topological order
            depth[step.key] = 1 + max((depth[r] for r in step.requires), default=-1)
        levels: list[list[PlannedStep]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
        for step in self.steps:
            levels[depth[step.key]].append(step)
        return levels

    def render(self) -> str:
        lines = []
        for number, level in enumerate(self.levels(), start=1):
            lines.append(f"Level {number} ({len(level)} step{'s' if len(level) != 1 else ''} in parallel):")
            lines.extend(f"  {s.key:<28} {s.summary}" for s in level)
        if self.outputs:
            lines.append("Outputs once running: " + ", ".join(self.outputs))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"steps": [s.to_dict() for s in self.steps], "outputs": dict(self.outputs)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            steps=tuple(
                PlannedStep(
                    key=s["key"],
                    kind=StepKind(s["kind"]),
                    node=s["node"],
                    requires=tuple(s["requires"]),
                    params=s["params"],
                    summary=s["summary"],
                )
                for s in data["steps"]
            ),
            outputs=data.get("outputs", {}),
        )


class PlanError(ValueError):
    """The template and inputs cannot make a plan; `errors` say why, one sentence each."""

    def __init__(self, errors: list[InputError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


def build_plan(template: Template, values: Mapping[str, Any]) -> Plan:
    """Checks the input values against the template's inputs, then orders every node's steps."""
    schema = {i.name: i.schema() for i in template.inputs}
    secret_defaults = {i.name: i.default for i in template.inputs if i.secret and i.has_default}
    clean, errors = check_input_values(schema, dict(values))
    if errors:
        raise PlanError(errors)
    hidden = frozenset(i.name for i in template.inputs if i.secret)
    nodes = {n.name: n for n in template.nodes}
    context = Context(
        inputs={**clean, **{k: v for k, v in secret_defaults.items() if k not in clean}},
        property=lambda node, prop: nodes[node].properties[prop],
        artifact=lambda node, name: next(a.file for a in nodes[node].artifacts if a.name == name),
        hidden_inputs=hidden,
    )
    try:
        return _Planner(template, nodes, context).plan()
    except FunctionError as exc:
        raise PlanError([InputError("", str(exc))]) from None


class _Planner:
    def __init__(self, template: Template, nodes: Mapping[str, NodeTemplate], context: Context) -> None:
        self.template = template
        self.nodes = nodes
        self.context = context
        self.steps: dict[str, PlannedStep] = {}
        self.hosts = {n.name: self._host_of(n) for n in template.nodes}
        # A Compute hosting software components runs as a container; one hosting only a Runtime is the target.
        self.compute_containers = {
            host
            for name, host in self.hosts.items()
            if host and self._is(name, SOFTWARE) and not self._is(name, RUNTIME)
        }

    def _is(self, node: str, type_name: str | tuple[str, ...]) -> bool:
        names = (type_name,) if isinstance(type_name, str) else type_name
        return any(self.nodes[node].is_a(name) for name in names)

    def _host_of(self, node: NodeTemplate) -> str | None:
        """The Compute a software component is hosted on, following HostedOn through intermediate software."""
        seen: set[str] = set()
        current: NodeTemplate | None = node
        while current is not None and current.name not in seen:
            seen.add(current.name)
            host = next(
                (r.target for r in current.requirements if r.relationship == HOSTED_ON or r.name == "host"), None
            )
            if host is None or host not in self.nodes:
                return None
            if self.nodes[host].is_a(COMPUTE):
                return host
            current = self.nodes[host]
        return None

    def _add(
        self, key: str, kind: StepKind, node: str | None, requires: list[str], params: dict[str, Any], summary: str
    ) -> None:
        self.steps[key] = PlannedStep(key, kind, node, tuple(dict.fromkeys(requires)), params, summary)

    def _runs_container(self, name: str) -> bool:
        return self._is(name, CONTAINER) or self._is(name, DOCKER_APP) or name in self.compute_containers

    def _ready_step(self, name: str) -> str | None:
        """The step after which a node counts as deployed, for what depends on it."""
        if self._runs_container(name):
            return f"{name}.wait"
        if self._is(name, VOLUME):
            return f"{name}.volume"
        if self._is(name, SECRET):
            return f"{name}.secret"
        if self._is(name, SOFTWARE) and self.hosts.get(name) in self.compute_containers:
            ops = self._lifecycle(self.nodes[name])
            return f"{name}.{ops[-1].name}" if ops else self._ready_step(self.hosts[name] or "")
        return None

    def _lifecycle(self, node: NodeTemplate) -> list[Any]:
        ops = {o.name: o for o in node.operations if o.interface.endswith("Standard") and o.implementation}
        return [ops[name] for name in LIFECYCLE if name in ops]

    def _dependencies(self, node: NodeTemplate) -> list[str]:
        """Ready steps of the nodes this node requires (except what it mounts, uses or is hosted on)."""
        found = []
        for requirement in node.requirements:
            target = requirement.target
            if target is None or target not in self.nodes or target == self.hosts.get(node.name):
                continue
            ready = self._ready_step(target)
            if ready:
                found.append(ready)
        return found

    def _resolve(self, value: Any, node: str) -> tuple[Any, list[str]]:
        resolved = resolve(value, self.context, node)
        refs = attribute_references(resolved, node) - {node}
        return resolved, [r for r in (self._ready_step(n) for n in sorted(refs) if n in self.nodes) if r]

    def plan(self) -> Plan:
        self._add(NETWORK_STEP, StepKind.NETWORK, None, [], {}, "create the deployment's private network")
        for node in self.template.nodes:
            if self._is(node.name, VOLUME):
                self._add(
                    f"{node.name}.volume",
                    StepKind.VOLUME,
                    node.name,
                    [],
                    {"name": node.name},
                    f"create volume {node.name}",
                )
            elif self._is(node.name, SECRET):
                value, after = self._resolve(node.properties.get("value", ""), node.name)
                self._add(
                    f"{node.name}.secret",
                    StepKind.SECRET,
                    node.name,
                    after,
                    {"name": node.name, "value": value},
                    f"store secret {node.name}",
                )
        for node in self._ordered():
            if self._runs_container(node.name):
                self._container_steps(node)
            elif self._is(node.name, SOFTWARE) and self.hosts.get(node.name) in self.compute_containers:
                self._operation_steps(node)
        outputs = {}
        for output in self.template.outputs:
            outputs[output.name] = resolve(output.value, self.context, "")
        return Plan(steps=tuple(self.steps.values()), outputs=outputs)

    def _ordered(self) -> list[NodeTemplate]:
        """Nodes in an order where every node comes after what it requires (stable: template order otherwise)."""
        order: list[NodeTemplate] = []
        state: dict[str, int] = {}

        def visit(name: str) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                raise FunctionError(f"The requirements of {name!r} go round in a circle.")
            state[name] = 1
            node = self.nodes[name]
            for requirement in node.requirements:
                if requirement.target is not None and requirement.target in self.nodes:
                    visit(requirement.target)
            for ref in sorted(attribute_references(dict(node.properties), name) - {name}):
                if ref in self.nodes:
                    visit(ref)
            state[name] = 2
            order.append(node)

        for node in self.template.nodes:
            visit(node.name)
        return order

    def _container_steps(self, node: NodeTemplate) -> None:
        name = node.name
        image_params, spec, after = self._container_spec(node)
        self._add(
            f"{name}.image",
            StepKind.IMAGE,
            name,
            [],
            image_params,
            f"build image for {name}" if "build" in image_params else f"make image {image_params['image']} ready",
        )
        for requirement in node.requirements:
            target = requirement.target
            if target is None or target not in self.nodes:
                continue
            if self._is(target, VOLUME):
                location = requirement.properties.get("location") or f"/data/{target}"
                spec["mounts"].append({"volume": target, "path": location})
                after.append(f"{target}.volume")
            elif self._is(target, SECRET):
                spec["secrets"].append({"secret": target, "file": requirement.properties.get("target") or target})
                after.append(f"{target}.secret")
        requires = [NETWORK_STEP, f"{name}.image", *after, *self._dependencies(node)]
        self._add(
            f"{name}.service",
            StepKind.SERVICE,
            name,
            requires,
            spec,
            f"run {spec['replicas']} x {spec['image'] or 'built image'} as {name}",
        )
        self._add(
            f"{name}.wait",
            StepKind.WAIT,
            name,
            [f"{name}.service"],
            {},
            f"wait until {name} runs{' and is healthy' if spec.get('healthcheck') else ''}",
        )

    def _container_spec(self, node: NodeTemplate) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        props: dict[str, Any] = {}
        after: list[str] = []
        for key, value in node.properties.items():
            props[key], needs = self._resolve(value, node.name)
            after += needs
        build = next((a for a in node.artifacts if a.type == BUILD_ARTIFACT), None)
        if node.name in self.compute_containers:
            image = COMPUTE_IMAGE
            props = {"command": ["sleep", "infinity"]}
        elif self._is(node.name, DOCKER_APP):
            image = next((a.file for a in node.artifacts if a.type == DOCKER_IMAGE_ARTIFACT), None) or ""
        else:
            image = str(props.get("image") or "")
        image_params: dict[str, Any] = {"image": image}
        if build is not None and not image:
            image_params = {"image": f"{node.name}-build", "build": build.file}
            image = ""
        spec = {
            "image": image,
            "command": props.get("command") or [],
            "environment": props.get("environment") or {},
            "ports": props.get("ports") or [],
            "replicas": props.get("replicas", 1),
            "cpu_limit": props.get("cpu_limit"),
            "mem_limit": props.get("mem_limit"),
            "healthcheck": props.get("healthcheck"),
            "mounts": [],
            "secrets": [],
        }
        return image_params, spec, after

    def _operation_steps(self, node: NodeTemplate) -> None:
        host = self.hosts[node.name]
        assert host is not None
        previous = [f"{host}.wait", *self._dependencies(node)]
        for operation in self._lifecycle(node):
            inputs = {k: self._resolve(v, node.name)[0] for k, v in operation.inputs.items()}
            key = f"{node.name}.{operation.name}"
            self._add(
                key,
                StepKind.OPERATION,
                node.name,
                previous,
                {"host": host, "operation": operation.name, "script": operation.implementation, "inputs": inputs},
                f"run {operation.name} script {operation.implementation} of {node.name} in {host}",
            )
            previous = [key]
