"""The types a template can use: TOSCA's normative ones and those its files define.

Names resolve the way tosca-parser resolves them (a custom type by its exact name
first, then `tosca:Compute` or `Compute` as `tosca.nodes.Compute`), so Agora's
own checks see the same types the parser validated against.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from toscaparser.elements.entity_type import EntityType

# A private copy: tosca-parser mutates its global definitions (merging inherited keys, NFV profiles).
_NORMATIVE: dict[str, Any] = copy.deepcopy(EntityType.TOSCA_DEF)

TYPE_SECTIONS = (
    "node_types",
    "relationship_types",
    "capability_types",
    "data_types",
    "artifact_types",
    "interface_types",
    "policy_types",
    "group_types",
)
PREFIXES = {
    "node_types": "tosca.nodes.",
    "relationship_types": "tosca.relationships.",
    "capability_types": "tosca.capabilities.",
    "data_types": "tosca.datatypes.",
    "artifact_types": "tosca.artifacts.",
    "interface_types": "tosca.interfaces.",
    "policy_types": "tosca.policies.",
    "group_types": "tosca.groups.",
}
_MAX_CHAIN = 64


@dataclass(frozen=True)
class TypeCycle:
    section: str
    chain: tuple[str, ...]


@dataclass
class TypeRegistry:
    custom: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → definition, all sections together
    origin: dict[str, str] = field(default_factory=dict)  # custom name → the file that defines it
    sections: dict[str, str] = field(default_factory=dict)  # custom name → its section
    _chains: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict, repr=False)
    _relationships: dict[tuple[str, str], str | None] = field(default_factory=dict, repr=False)

    def add_file(self, data: Mapping[str, Any], file: str, namespace_prefix: str | None = None) -> None:
        self._chains.clear()
        self._relationships.clear()
        for section in TYPE_SECTIONS:
            defs = data.get(section)
            if not isinstance(defs, dict):
                continue
            for name, definition in defs.items():
                full = f"{namespace_prefix}.{name}" if namespace_prefix else str(name)
                self.custom[full] = definition if isinstance(definition, dict) else {}
                self.origin[full] = file
                self.sections[full] = section

    def resolve(self, name: Any, section: str) -> str | None:
        """The full name of a known type, or None."""
        if not isinstance(name, str) or not name:
            return None
        if name in self.custom:
            return name
        prefix = PREFIXES[section]
        short = name[len("tosca:") :] if name.startswith("tosca:") else name
        full = short if short.startswith("tosca") else prefix + short
        return full if full in _NORMATIVE else None

    def definition(self, full_name: str) -> dict[str, Any]:
        found = self.custom.get(full_name)
        if found is None:
            found = _NORMATIVE.get(full_name)
        return found if isinstance(found, dict) else {}

    def ancestors(self, name: Any, section: str) -> tuple[str, ...]:
        """The type and the types it derives from, nearest first; empty when unknown."""
        if not isinstance(name, str):
            return ()
        cached = self._chains.get((name, section))
        if cached is not None:
            return cached
        chain: list[str] = []
        current = self.resolve(name, section)
        while current is not None and current not in chain and len(chain) < _MAX_CHAIN:
            chain.append(current)
            current = self.resolve(self.definition(current).get("derived_from"), section)
        self._chains[(name, section)] = found = tuple(chain)
        return found

    def is_a(self, name: Any, base: str, section: str) -> bool:
        return base in self.ancestors(name, section)

    def cycles(self) -> list[TypeCycle]:
        """Custom types that derive from themselves: tosca-parser would recurse or loop on them."""
        found: list[TypeCycle] = []
        reported: set[str] = set()
        for name, section in self.sections.items():
            chain: list[str] = []
            current: str | None = name
            while current is not None and current not in chain and len(chain) < _MAX_CHAIN:
                chain.append(current)
                current = self.resolve(self.definition(current).get("derived_from"), section)
            if current is not None and current in chain and current not in reported:
                loop = (*chain[chain.index(current) :], current)
                reported.update(loop)
                found.append(TypeCycle(section, loop))
        return found

    def requirement_definition(self, node_type: Any, requirement: str) -> dict[str, Any] | None:
        """A requirement's definition, from the nearest node type that declares it."""
        for type_name in self.ancestors(node_type, "node_types"):
            for name, definition in _requirement_items(self.definition(type_name).get("requirements")):
                if name == requirement:
                    return definition if isinstance(definition, dict) else {"node": definition}
        return None

    def relationship_of(self, node_type: Any, requirement: str) -> str | None:
        """The relationship type a node type's requirement declares (cached: asked once per requirement)."""
        key = (str(node_type), requirement)
        if key not in self._relationships:
            self._relationships[key] = self._relationship_of(node_type, requirement)
        return self._relationships[key]

    def _relationship_of(self, node_type: Any, requirement: str) -> str | None:
        definition = self.requirement_definition(node_type, requirement) or {}
        rel = definition.get("relationship")
        if isinstance(rel, dict):
            rel = rel.get("type")
        return self.resolve(rel, "relationship_types") or (rel if isinstance(rel, str) else None)

    def defined_in(self, full_name: str) -> str | None:
        return self.origin.get(full_name)


def _requirement_items(requirements: Any) -> Iterable[tuple[Any, Any]]:
    if isinstance(requirements, dict):
        yield from requirements.items()
    elif isinstance(requirements, list):
        for item in requirements:
            if isinstance(item, dict):
                yield from item.items()
