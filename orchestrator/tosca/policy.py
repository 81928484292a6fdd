"""Agora's security rules for templates from untrusted publishers: `policy` problems.

One place for the whole list: RULES, each a small function over one node
template. They run at validation on what the template says (literal values,
and the defaults of the inputs a property takes with get_input); the Docker
driver runs the same rules again at deployment with the subscriber's values
(`check_node` with `inputs`). To allow something new, widen a constant or a
rule here, nowhere else. Two rules look at the whole template instead, in
`check_policy`: a secret input's default, and an output that would show a
secret (secret_flow says which values can carry one).

Limits on the files themselves (size, zip bombs, YAML bombs, imports and paths
outside the archive) are enforced where the files are read and come back as
policy problems from there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.tosca import units
from orchestrator.tosca.model import NodeTemplate, Problem, ProblemKind, Severity, Template
from orchestrator.tosca.secret_flow import SecretSource, secret_sources

MAX_CPUS = 8.0
MAX_MEMORY_BYTES = 32 * 1024**3
MAX_REPLICAS = 20
MAX_VOLUME_BYTES = 500 * 1000**3
ENVIRONMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Docker options a template must never reach, under whatever type defines them.
FORBIDDEN_PROPERTIES = frozenset(
    {
        "privileged",
        "cap_add",
        "devices",
        "device_cgroup_rules",
        "network_mode",
        "host_network",
        "pid",
        "pid_mode",
        "ipc",
        "ipc_mode",
        "userns_mode",
        "uts",
        "security_opt",
        "sysctls",
        "volumes_from",
        "binds",
        "host_path",
        "docker_socket",
    }
)
# "/host:/container", "./dir:/data", "~/x:/y": Docker's bind syntax, whatever the property is called.
_BIND = re.compile(r"^\s*(?:/|~|\.{1,2}/)[^:]*:/")
_DOCKER_SOCKET = re.compile(r"docker\.sock", re.IGNORECASE)
_CONTAINER = "agora.nodes.Container"
_TEXT_PROPERTIES = frozenset({"environment", "command", "healthcheck"})
_VOLUME = "agora.nodes.Volume"


@dataclass(frozen=True)
class Violation:
    message: str
    property: str | None = None
    path: tuple[Any, ...] = ()  # under the node template, for the line
    severity: Severity = Severity.ERROR


@dataclass(frozen=True)
class Value:
    """A property's value as the rules see it: literal, or an input's default or given value."""

    value: Any
    source: str = ""  # "" when literal, else ' (from input "x")'


Inputs = Mapping[str, Any]
Rule = Callable[[NodeTemplate, Inputs], Iterator[Violation]]


def check_policy(template: Template, *, line_of: Callable[..., int | None] | None = None) -> list[Problem]:
    """Every rule on every node, with the inputs' defaults standing for get_input."""
    defaults = {i.name: i.default for i in template.inputs if i.has_default}
    problems: list[Problem] = []
    for node in template.nodes:
        for violation in check_node(node, defaults):
            line = line_of("topology_template", "node_templates", node.name, *violation.path) if line_of else None
            problems.append(
                Problem(
                    violation.severity,
                    ProblemKind.POLICY,
                    violation.message,
                    template.file,
                    line if line is not None else node.line,
                    node.name,
                    violation.property,
                )
            )
    for spec in template.inputs:
        if spec.secret and spec.has_default:
            line = line_of("topology_template", "inputs", spec.name, "default") if line_of else spec.line
            problems.append(
                Problem(
                    Severity.WARNING,
                    ProblemKind.POLICY,
                    f'The secret input "{spec.name}" has a default, which every subscriber would share; remove it '
                    "so each subscriber sets their own.",
                    template.file,
                    line,
                    None,
                )
            )
    for output in template.outputs:
        sources = secret_sources(output.value, template)
        if sources:
            line = line_of("topology_template", "outputs", output.name, "value") if line_of else None
            problems.append(
                Problem(
                    Severity.ERROR, ProblemKind.POLICY, _shows_secrets(output.name, sources), template.file, line, None
                )
            )
    return problems


def _shows_secrets(output: str, sources: list[SecretSource]) -> str:
    shown = [s.describe() for s in sources]
    listing = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return (
        f'Output "{output}" would show {listing}; outputs are shown to everyone who sees the deployment. '
        "Take the secret out of the output: containers get secrets through an agora.nodes.Secret node (or the "
        "input in their environment), never through outputs."
    )


def check_node(node: NodeTemplate, inputs: Inputs) -> list[Violation]:
    return [v for rule in RULES for v in rule(node, inputs)]


def _value(raw: Any, inputs: Inputs) -> Value | None:
    """The value to check, or None when it is only known at deployment (an input without a value, a function)."""
    if isinstance(raw, dict) and len(raw) == 1:
        ((function, args),) = raw.items()
        if function == "get_input":
            name = args[0] if isinstance(args, list) and args else args
            if isinstance(name, str) and name in inputs:
                return Value(inputs[name], f' (from input "{name}")')
            return None
        if isinstance(function, str) and function.startswith(("get_", "concat", "join", "token")):
            return None
    return Value(raw)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def size_in_bytes(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return units.size_in_bytes(value)


# --- the rules


def cpu_limit(node: NodeTemplate, inputs: Inputs) -> Iterator[Violation]:
    value = _value(node.properties.get("cpu_limit"), inputs) if node.is_a(_CONTAINER) else None
    if value is None or value.value is None:
        return
    cpus = _number(value.value)
    if cpus is not None and not 0 < cpus <= MAX_CPUS:
        yield Violation(
            f'Node template "{node.name}": cpu_limit {value.value}{value.source} must be above 0 and at most '
            f"{MAX_CPUS:g} CPUs.",
            "cpu_limit",
            ("properties", "cpu_limit"),
        )


def mem_limit(node: NodeTemplate, inputs: Inputs) -> Iterator[Violation]:
    value = _value(node.properties.get("mem_limit"), inputs) if node.is_a(_CONTAINER) else None
    if value is None or value.value is None:
        return
    size = size_in_bytes(value.value)
    if size is not None and not 0 < size <= MAX_MEMORY_BYTES:
        yield Violation(
            f'Node template "{node.name}": mem_limit {value.value}{value.source} must be above 0 and at most '
            f"{MAX_MEMORY_BYTES // 1024**3} GiB.",
            "mem_limit",
            ("properties", "mem_limit"),
        )


def replicas(node: NodeTemplate, inputs: Inputs) -> Iterator[Violation]:
    value = _value(node.properties.get("replicas"), inputs) if node.is_a(_CONTAINER) else None
    count = _number(value.value) if value is not None else None
    if value is not None and count is not None and count > MAX_REPLICAS:
        yield Violation(
            f'Node template "{node.name}": replicas {value.value}{value.source} is more than Agora runs per node '
            f"({MAX_REPLICAS}).",
            "replicas",
            ("properties", "replicas"),
        )


def ports(node: NodeTemplate, inputs: Inputs) -> Iterator[Violation]:
    value = _value(node.properties.get("ports"), inputs) if node.is_a(_CONTAINER) else None
    if value is None or not isinstance(value.value, list):
        return
    for index, port in enumerate(value.value):
        target = _value(port.get("target"), inputs) if isinstance(port, dict) else None
        if target is None or target.value is None or isinstance(target.value, bool):
            continue
        number = _number(target.value)
        if number is not None and not (number == int(number) and 1 <= number <= 65535):
            yield Violation(
                f'Node template "{node.name}": port {target.value}{target.source} is not a port number (1 to 65535).',
                "ports",
                ("properties", "ports", index),
            )


def environment(node: NodeTemplate, inputs: Inputs) -> Iterator[Violation]:
    value = _value(node.properties.get("environment"), inputs) if node.is_a(_CONTAINER) else None
    if value is None or not isinstance(value.value, dict):
        return
    for name in value.value:
        if not isinstance(name, str) or not ENVIRONMENT_NAME.match(name):
            yield Violation(
                f'Node template "{node.name}": {name!r} is not a valid environment variable name (letters, digits '
                "and _, not starting with a digit).",
                "environment",
                ("properties", "environment", name),
            )


def forbidden_properties(node: NodeTemplate, inputs: Inputs) -> Iterator[Violation]:
    for name in node.properties:
        if isinstance(name, str) and name.lower() in FORBIDDEN_PROPERTIES:
            yield Violation(
                f'Node template "{node.name}": the property "{name}" would reach the Docker host ({name}); '
                "Agora never grants it to a template.",
                name,
                ("properties", name),
            )


def host_paths(node: NodeTemplate, inputs: Inputs) -> Iterator[Violation]:
    """No value may name a path on the Docker host: bind mounts, the Docker socket, a volume's source."""
    # What a container reads as text (its environment, its command, its health check) never becomes a mount:
    # "PATH=/usr/bin:/bin" is not a bind. Mounts only come from volumes, which crane checks again.
    as_text = _TEXT_PROPERTIES if node.is_a(_CONTAINER) else frozenset()
    places: list[tuple[str, tuple[Any, ...], Any]] = [
        (str(name), ("properties", name), value) for name, value in node.properties.items() if name not in as_text
    ]
    for cap, props in node.capabilities.items():
        places.extend((str(name), ("capabilities", cap, "properties", name), v) for name, v in props.items())
    for req in node.requirements:
        places.extend((str(name), ("requirements",), v) for name, v in req.properties.items())
    is_volume = node.is_a(_VOLUME)
    for name, path, raw in places:
        for text in _strings(raw, inputs):
            if _BIND.match(text) or _DOCKER_SOCKET.search(text) or (is_volume and text.startswith("/")):
                yield Violation(
                    f'Node template "{node.name}": "{name}" names a path on the Docker host ({text!r}); templates '
                    "get Docker volumes (agora.nodes.Volume), never host folders or the Docker socket.",
                    name,
                    path,
                )
                break


def volume_size(node: NodeTemplate, inputs: Inputs) -> Iterator[Violation]:
    value = _value(node.properties.get("size"), inputs) if node.is_a(_VOLUME) else None
    size = size_in_bytes(value.value) if value is not None else None
    if value is not None and size is not None and not 0 < size <= MAX_VOLUME_BYTES:
        yield Violation(
            f'Node template "{node.name}": size {value.value}{value.source} must be above 0 and at most '
            f"{MAX_VOLUME_BYTES // 1000**3} GB.",
            "size",
            ("properties", "size"),
        )


def _strings(raw: Any, inputs: Inputs, depth: int = 0) -> Iterator[str]:
    if depth > 16:
        return
    value = _value(raw, inputs)
    if value is None:
        return
    if isinstance(value.value, str):
        yield value.value
    elif isinstance(value.value, dict):
        for item in value.value.values():
            yield from _strings(item, inputs, depth + 1)
    elif isinstance(value.value, list):
        for item in value.value:
            yield from _strings(item, inputs, depth + 1)


RULES: tuple[Rule, ...] = (
    cpu_limit,
    mem_limit,
    replicas,
    ports,
    environment,
    forbidden_properties,
    host_paths,
    volume_size,
)
