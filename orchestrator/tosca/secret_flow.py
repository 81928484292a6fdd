"""Which secrets a value can carry: secret inputs, read directly or through functions and property chains.

Validation refuses an output that can carry one (outputs are shown to everyone who sees the
deployment); the engine asks the same of a stored plan's outputs and masks them, for deployments
planned before that rule existed.

What carries a secret:
- get_input of an input whose metadata says `secret: true`;
- concat, join and token of anything that carries one (a part of a secret is still a secret);
- get_property of a node property whose value carries one, followed from node to node (each node
  property at most once, so cycles end, and with a list of work instead of recursion, so long
  chains do too); the `value` of an agora.nodes.Secret node, even a literal one.

get_attribute carries none: Agora's attributes (private_address, public_address, public_port) are
set by Agora when a node runs, never from inputs; a template's own `attributes:` values are not
read. get_artifact names a file or an image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.functions import function_of
from orchestrator.tosca.model import NodeTemplate, Template

SECRET_NODE = "agora.nodes.Secret"  # noqa: S105 - a type name
_MAX_NESTING = 128  # within one value (what Agora reads nests 64 deep at most)


@dataclass(frozen=True)
class SecretSource:
    """A secret a value can show: a secret input, or the value of an agora.nodes.Secret node template."""

    name: str
    is_input: bool
    via: tuple[tuple[str, str], ...] = ()  # the (node template, property) lookups from the value to the secret

    def describe(self) -> str:
        if not self.is_input:
            return f'the value of the secret node template "{self.name}"'
        hops = ", ".join(f'the property "{prop}" of node template "{node}"' for node, prop in self.via)
        return f'the secret input "{self.name}"' + (f" (through {hops})" if hops else "")


def secret_sources(value: Any, template: Template, node: str = "") -> list[SecretSource]:
    """The secrets `value` can carry, each once (by the first way found), in the order met."""
    secret_inputs = {i.name for i in template.inputs if i.secret}
    nodes = {n.name: n for n in template.nodes}
    found: dict[tuple[bool, str], SecretSource] = {}
    followed: set[tuple[str, str]] = set()
    work: list[tuple[Any, str, tuple[tuple[str, str], ...], int]] = [(value, node, (), 0)]
    while work:
        item, here, via, depth = work.pop()
        if depth > _MAX_NESTING:
            continue
        function = function_of(item)
        if function is None:
            if isinstance(item, Mapping):
                work.extend((v, here, via, depth + 1) for v in reversed(list(item.values())))
            elif isinstance(item, list):
                work.extend((v, here, via, depth + 1) for v in reversed(item))
            continue
        name, args = function
        if name == "get_input":
            input_name = args[0] if isinstance(args, list) and args else args
            if isinstance(input_name, str) and input_name in secret_inputs:
                found.setdefault((True, input_name), SecretSource(input_name, True, via))
        elif name == "get_property":
            for target, prop, raw in reversed(_lookups(args, here, nodes)):
                if (target.name, prop) in followed:
                    continue
                followed.add((target.name, prop))
                if target.is_a(SECRET_NODE) and prop == "value":
                    found.setdefault((False, target.name), SecretSource(target.name, False, via))
                work.append((raw, target.name, (*via, (target.name, prop)), 0))  # a new value: its own nesting
        elif name in ("concat", "join", "token"):
            work.append((args, here, via, depth + 1))
        # get_attribute, get_artifact: see the module's docstring.
    # A Secret node whose value is (or reads) a secret input is named by that input, more precisely.
    through = {hop for source in found.values() if source.is_input for hop in source.via}
    return [s for s in found.values() if s.is_input or (s.name, "value") not in through]


def _lookups(args: Any, here: str, nodes: Mapping[str, NodeTemplate]) -> list[tuple[NodeTemplate, str, Any]]:
    """Every property get_property may read: [node, property, ...] (the engine reads the last name as the
    property) and [node, capability, property]; each interpretation, so none escapes the check."""
    if not isinstance(args, list) or len(args) < 2:
        return []
    ref = args[0]
    if ref == "SELF":
        ref = here
    elif ref == "HOST":
        ref = _host(nodes.get(here))
    target = nodes.get(ref) if isinstance(ref, str) else None
    if target is None:
        return []
    lookups: list[tuple[NodeTemplate, str, Any]] = []
    for prop in dict.fromkeys(a for a in (args[1], args[-1]) if isinstance(a, str)):
        if prop in target.properties:
            lookups.append((target, prop, target.properties[prop]))
    if len(args) >= 3 and isinstance(args[1], str) and isinstance(args[2], str):
        capability = target.capabilities.get(args[1])
        if capability is not None and args[2] in capability:
            lookups.append((target, f"{args[1]}.{args[2]}", capability[args[2]]))
    return lookups


def _host(node: NodeTemplate | None) -> str | None:
    if node is None:
        return None
    return next((r.target for r in node.requirements if r.name == "host"), None)
