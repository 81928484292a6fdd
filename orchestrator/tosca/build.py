"""Turn the loaded template into Agora's plain data (model.Template).

Works on whatever shape the file has: tosca-parser reports wrong shapes, so this
only skips what it cannot read and never raises on bad input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.tosca.model import (
    Artifact,
    Input,
    Metadata,
    NodeTemplate,
    Operation,
    Output,
    Requirement,
    Template,
)
from orchestrator.tosca.registry import TypeRegistry
from orchestrator.tosca.safe_yaml import YamlDocument


def build_template(document: YamlDocument, registry: TypeRegistry, file: str | None) -> Template:
    data = document.data
    topology = _dict(data.get("topology_template"))
    return Template(
        metadata=_metadata(data),
        inputs=tuple(_inputs(_dict(topology.get("inputs")), document)),
        nodes=tuple(_nodes(topology, registry, document)),
        outputs=tuple(_outputs(_dict(topology.get("outputs")))),
        file=file,
    )


def _metadata(data: Mapping[Any, Any]) -> Metadata:
    meta = _dict(data.get("metadata"))

    def pick(key: str) -> str | None:
        value = meta.get(key, data.get(key))  # 1.2+ keeps them under metadata; 1.0 at the top
        return None if value is None else str(value)

    description = data.get("description")
    version = data.get("tosca_definitions_version")
    return Metadata(
        template_name=pick("template_name"),
        template_version=pick("template_version"),
        template_author=pick("template_author"),
        description=str(description).strip() if description is not None else None,
        tosca_version=str(version) if version is not None else None,
    )


def _inputs(inputs: Mapping[Any, Any], document: YamlDocument) -> list[Input]:
    found = []
    for name, spec in inputs.items():
        if not isinstance(spec, dict):
            continue
        constraints = spec.get("constraints")
        entry = spec.get("entry_schema")
        entry_type = entry.get("type") if isinstance(entry, dict) else entry
        required = spec.get("required", True)
        found.append(
            Input(
                name=str(name),
                type=str(spec.get("type", "string")),
                description=str(spec.get("description") or "").strip(),
                default=spec.get("default"),
                has_default="default" in spec and spec.get("default") is not None,
                constraints=tuple(c for c in constraints if isinstance(c, dict))
                if isinstance(constraints, list)
                else (),
                required=required if isinstance(required, bool) else True,
                secret=is_secret(spec),
                entry_schema=str(entry_type) if entry_type is not None else None,
                line=document.line("topology_template", "inputs", name),
            )
        )
    return found


def is_secret(spec: Mapping[Any, Any]) -> bool:
    secret = _dict(spec.get("metadata")).get("secret")
    return secret is True or (isinstance(secret, str) and secret.strip().lower() == "true")


def _nodes(topology: Mapping[Any, Any], registry: TypeRegistry, document: YamlDocument) -> list[NodeTemplate]:
    templates = _dict(topology.get("node_templates"))
    rel_templates = _dict(topology.get("relationship_templates"))
    nodes = []
    for name, tpl in templates.items():
        if not isinstance(tpl, dict):
            continue
        raw_type = tpl.get("type")
        types = registry.ancestors(raw_type, "node_types")
        nodes.append(
            NodeTemplate(
                name=str(name),
                type=types[0] if types else str(raw_type),
                types=types,
                properties={**_property_defaults(types, registry), **_dict(tpl.get("properties"))},
                requirements=tuple(_requirements(tpl, raw_type, registry, rel_templates)),
                artifacts=tuple(_artifacts(tpl, registry)),
                operations=tuple(_operations(tpl)),
                capabilities={
                    str(k): _dict(_dict(v).get("properties")) for k, v in _dict(tpl.get("capabilities")).items()
                },
                line=document.line("topology_template", "node_templates", name),
            )
        )
    return nodes


def _property_defaults(types: tuple[str, ...], registry: TypeRegistry) -> dict[str, Any]:
    """The defaults the node's types declare, nearest type winning: what the node runs with when it says nothing."""
    defaults: dict[str, Any] = {}
    for type_name in reversed(types):
        for prop, spec in _dict(registry.definition(type_name).get("properties")).items():
            if isinstance(spec, dict) and "default" in spec:
                defaults[str(prop)] = spec["default"]
    return defaults


def _requirements(
    tpl: Mapping[Any, Any], node_type: Any, registry: TypeRegistry, rel_templates: Mapping[Any, Any]
) -> list[Requirement]:
    found = []
    reqs = tpl.get("requirements")
    for item in reqs if isinstance(reqs, list) else []:
        if not isinstance(item, dict):
            continue
        for name, value in item.items():
            spec = value if isinstance(value, dict) else {"node": value}
            target = spec.get("node")
            rel = spec.get("relationship")
            rel_template = None
            properties: Mapping[str, Any] = {}
            if isinstance(rel, str) and rel in rel_templates:
                rel_template = rel
                rel_spec = _dict(rel_templates[rel])
                rel_type = rel_spec.get("type")
                properties = _dict(rel_spec.get("properties"))
            elif isinstance(rel, dict):
                rel_type = rel.get("type")
                properties = _dict(rel.get("properties"))
            else:
                rel_type = rel
            resolved = (
                registry.resolve(rel_type, "relationship_types")
                if rel_type is not None
                else registry.relationship_of(node_type, str(name))
            )
            capability = spec.get("capability")
            found.append(
                Requirement(
                    name=str(name),
                    target=str(target) if target is not None else None,
                    relationship=resolved or (str(rel_type) if rel_type is not None else None),
                    capability=str(capability) if capability is not None else None,
                    properties=properties,
                    relationship_template=rel_template,
                )
            )
    return found


def _artifacts(tpl: Mapping[Any, Any], registry: TypeRegistry) -> list[Artifact]:
    found = []
    for name, spec in _dict(tpl.get("artifacts")).items():
        if isinstance(spec, str):
            found.append(Artifact(name=str(name), type=None, file=spec))
        elif isinstance(spec, dict):
            raw_type = spec.get("type")
            file = spec.get("file")
            deploy_path = spec.get("deploy_path")
            found.append(
                Artifact(
                    name=str(name),
                    type=registry.resolve(raw_type, "artifact_types") or (str(raw_type) if raw_type else None),
                    file=str(file) if file is not None else None,
                    deploy_path=str(deploy_path) if deploy_path is not None else None,
                )
            )
    return found


def _operations(tpl: Mapping[Any, Any]) -> list[Operation]:
    found = []
    for interface, ops in _dict(tpl.get("interfaces")).items():
        ops = _dict(ops)
        if isinstance(ops.get("operations"), dict):  # TOSCA 1.3 nests them under "operations"
            ops = ops["operations"]
        for op_name, op in ops.items():
            if op_name in ("type", "inputs", "notifications"):
                continue
            implementation: Any = op
            inputs: Mapping[str, Any] = {}
            dependencies: tuple[str, ...] = ()
            if isinstance(op, dict):
                implementation = op.get("implementation")
                inputs = _dict(op.get("inputs"))
            if isinstance(implementation, dict):
                deps = implementation.get("dependencies")
                dependencies = tuple(str(d) for d in deps) if isinstance(deps, list) else ()
                implementation = implementation.get("primary")
            found.append(
                Operation(
                    interface=str(interface),
                    name=str(op_name),
                    implementation=str(implementation) if isinstance(implementation, str) else None,
                    dependencies=dependencies,
                    inputs=inputs,
                )
            )
    return found


def _outputs(outputs: Mapping[Any, Any]) -> list[Output]:
    return [
        Output(
            name=str(name),
            description=str(_dict(spec).get("description") or "").strip(),
            value=_dict(spec).get("value"),
        )
        for name, spec in outputs.items()
    ]


def _dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}
