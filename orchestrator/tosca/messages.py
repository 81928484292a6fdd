"""Turn what tosca-parser found into sentences a publisher can act on.

The parser's exceptions carry only a formatted message, so each class is matched
by the shape of its message; the node, property, input or output it concerns
comes from the context the checker noted, and the line from Agora's own parse.
Anything unrecognised keeps a cleaned version of the parser's message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.tosca.checker import CheckResult, Context, Finding
from orchestrator.tosca.model import Problem, ProblemKind, Severity
from orchestrator.tosca.registry import TYPE_SECTIONS, TypeRegistry
from orchestrator.tosca.sources import AGORA_PROFILE_IMPORT, Sources

SUPPORTED_VERSIONS = ("tosca_simple_yaml_1_0", "tosca_simple_yaml_1_2", "tosca_simple_yaml_1_3")
TOP_LEVEL_SECTIONS = (
    "tosca_definitions_version, metadata, description, imports, repositories, dsl_definitions, node_types, "
    "relationship_types, capability_types, data_types, artifact_types, interface_types, policy_types, "
    "group_types, topology_template"
)
_TOPOLOGY_SECTIONS = "inputs, node_templates, relationship_templates, outputs, groups, policies, substitution_mappings"
_NODE_KEYS = (
    "type, description, metadata, directives, properties, attributes, requirements, capabilities, interfaces, "
    "artifacts, node_filter, copy"
)
_INPUT_TYPES = (
    "string, integer, float, boolean, timestamp, range, list, map, version, scalar-unit.size, scalar-unit.time "
    "or scalar-unit.frequency"
)
_NT = ("topology_template", "node_templates")


@dataclass
class Locator:
    """Finds where things are: lines come from Agora's parse of each file."""

    sources: Sources
    registry: TypeRegistry

    @property
    def main(self) -> Any:
        return self.sources.main.data

    def node_data(self, node: str | None) -> dict[Any, Any]:
        nodes = _get(self.main, *_NT)
        found = nodes.get(node) if isinstance(nodes, dict) and node is not None else None
        return found if isinstance(found, dict) else {}

    def node_type(self, node: str | None) -> str | None:
        raw = self.node_data(node).get("type")
        return self.registry.resolve(raw, "node_types") or (raw if isinstance(raw, str) else None)

    def line(self, *path: Any) -> int | None:
        return self.sources.main.document.line(*path)

    def node_line(self, node: str | None, *rest: Any) -> int | None:
        if node is None:
            return None
        return self.line(*_NT, node, *rest)

    def property_line(self, node: str, prop: str) -> int | None:
        """The line of a property: the node's own, else one set in a capability, else the node's."""
        found = self.sources.main.document.lines.get((*_NT, node, "properties", prop))
        if found is not None:
            return found
        caps = self.node_data(node).get("capabilities")
        if isinstance(caps, dict):
            for cap in caps:
                found = self.sources.main.document.lines.get((*_NT, node, "capabilities", cap, "properties", prop))
                if found is not None:
                    return found
        return self.node_line(node, "properties")

    def requirement_line(self, node: str, name: str | None = None, target: str | None = None) -> int | None:
        reqs = self.node_data(node).get("requirements")
        if isinstance(reqs, list):
            for index, req in enumerate(reqs):
                if not isinstance(req, dict):
                    continue
                for key, value in req.items():
                    node_ref = value.get("node") if isinstance(value, dict) else value
                    if (name is None or key == name) and (target is None or node_ref == target):
                        return self.node_line(node, "requirements", index)
        return self.node_line(node, "requirements")

    def type_location(self, type_name: str, *rest: Any) -> tuple[str | None, int | None]:
        """The file and line where a custom type (or one of its keys) is defined."""
        for file in self.sources.files():
            for section in TYPE_SECTIONS:
                defs = file.data.get(section)
                prefix = file.namespace_prefix
                short = type_name[len(prefix) + 1 :] if prefix and type_name.startswith(prefix + ".") else type_name
                if isinstance(defs, dict) and short in defs:
                    return file.name, file.document.line(section, short, *rest)
        return None, None

    def type_reference(self, type_name: str) -> tuple[str | None, int | None, str | None]:
        """Where an unknown type is used: a node template's type, or a custom type's derived_from."""
        nodes = _get(self.main, *_NT)
        if isinstance(nodes, dict):
            for name, tpl in nodes.items():
                if isinstance(tpl, dict) and tpl.get("type") == type_name:
                    return self.sources.main.name, self.node_line(str(name), "type"), str(name)
        for file in self.sources.files():
            for section in TYPE_SECTIONS:
                defs = file.data.get(section)
                if isinstance(defs, dict):
                    for name, definition in defs.items():
                        if isinstance(definition, dict) and definition.get("derived_from") == type_name:
                            return file.name, file.document.line(section, name, "derived_from"), None
        return self.sources.main.name, None, None

    def property_names(self, node: str) -> list[str]:
        names: list[str] = []
        for type_name in self.registry.ancestors(self.node_data(node).get("type"), "node_types"):
            props = self.registry.definition(type_name).get("properties")
            if isinstance(props, dict):
                names.extend(str(p) for p in props if str(p) not in names)
        return names

    def requirement_names(self, node: str) -> list[str]:
        names: list[str] = []
        for type_name in self.registry.ancestors(self.node_data(node).get("type"), "node_types"):
            reqs = self.registry.definition(type_name).get("requirements")
            items = (
                reqs.items()
                if isinstance(reqs, dict)
                else [kv for r in reqs or [] if isinstance(r, dict) for kv in r.items()]
            )
            names.extend(str(k) for k, _ in items if str(k) not in names)
        return names


@dataclass(frozen=True)
class _Said:
    message: str
    line: int | None = None
    node: str | None = None
    property: str | None = None
    file: str | None = None  # None: the entry file


_Handler = Callable[[re.Match[str], Context, Locator], _Said]


def problems_from(result: CheckResult, where: Locator) -> list[Problem]:
    problems: list[Problem] = []
    seen_values: set[tuple[str | None, str | None, str | None]] = set()
    for finding in result.findings:
        context = finding.context
        # One problem per value: the parser often follows a bad value with errors about the None it became.
        if context.property or context.input:
            value_key = (context.node, context.property, context.input)
            if value_key in seen_values and _is_value_error(finding):
                continue
            if _is_value_error(finding):
                seen_values.add(value_key)
        said = _translate(finding, where)
        if said.file is not None:  # placed by the handler itself, e.g. at a type definition
            node, prop = said.node, said.property
        else:
            node = said.node if said.node is not None else context.node
            prop = said.property if said.property is not None else context.property
        problems.append(
            Problem(
                Severity.ERROR,
                ProblemKind.TOSCA,
                said.message,
                said.file or where.sources.main.name,
                said.line,
                node,
                prop,
            )
        )
    if result.crash is not None and problems:
        # Usually a consequence of a problem above (a constraint compared with a value of the wrong type).
        problems.append(
            Problem(
                Severity.WARNING,
                ProblemKind.TOSCA,
                "The TOSCA parser stopped before checking everything; fix the problems above and validate again.",
                where.sources.main.name,
                None,
                None,
            )
        )
    elif result.crash is not None:
        problems.append(
            Problem(Severity.ERROR, ProblemKind.TOSCA, crash_message(result.crash), where.sources.main.name, None, None)
        )
    if result.truncated:
        problems.append(
            Problem(
                Severity.WARNING,
                ProblemKind.TOSCA,
                "The TOSCA parser found more problems than are listed here; fix these and validate again.",
                where.sources.main.name,
                None,
                None,
            )
        )
    return problems


def _is_value_error(finding: Finding) -> bool:
    return type(finding.exception).__name__ in ("ValueError", "ValidationError", "TypeMismatchError")


def crash_message(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return (
            "The TOSCA parser could not check this template: it went round in circles (a type that derives from "
            "itself, or requirements that lead back to their own node)."
        )
    return (
        f"The TOSCA parser could not check this template: it stopped on {clean(str(exc)) or type(exc).__name__} "
        "This usually means a section has the wrong shape (a list where a mapping is expected, or the reverse); "
        "check the sections named in the other problems, or the node templates' requirements and interfaces."
    )


def _translate(finding: Finding, where: Locator) -> _Said:
    exc = finding.exception
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(text.split())
    for class_name, pattern, handler in _RULES:
        if class_name != type(exc).__name__:
            continue
        match = pattern.match(text)
        if match:
            return handler(match, finding.context, where)
    return _generic(text, finding.context, where)


def clean(text: str) -> str:
    text = " ".join(text.replace("Refer to the definition to verify valid values.", "").split())
    if text and text[-1] not in ".!?":
        text += "."
    return text[:400]


def _generic(text: str, ctx: Context, where: Locator) -> _Said:
    message = clean(text)
    line = None
    if ctx.node and ctx.property:
        line = where.property_line(ctx.node, ctx.property)
        if f'"{ctx.property}"' not in message:
            message = f'Property "{ctx.property}" of node template "{ctx.node}": {message}'
        elif f'"{ctx.node}"' not in message:
            message = f'Node template "{ctx.node}": {message}'
    elif ctx.node:
        line = where.node_line(ctx.node)
        if f'"{ctx.node}"' not in message:
            message = f'Node template "{ctx.node}": {message}'
    elif ctx.input:
        line = where.line("topology_template", "inputs", ctx.input, "default") or where.line(
            "topology_template", "inputs", ctx.input
        )
        if f'"{ctx.input}"' not in message:
            message = f'Input "{ctx.input}": {message}'
    elif ctx.output:
        line = where.line("topology_template", "outputs", ctx.output)
        if f'"{ctx.output}"' not in message:
            message = f'Output "{ctx.output}": {message}'
    return _Said(message, line)


def _names(raw: str) -> list[str]:
    quoted = re.findall(r"'([^']*)'", raw)
    return quoted or [raw]


def _listing(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


# --- MissingRequiredFieldError


def _missing_version(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    return _Said(
        "The template has no tosca_definitions_version; start it with "
        "'tosca_definitions_version: tosca_simple_yaml_1_3'.",
        1,
    )


def _missing_properties(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    node, names = m["node"], _names(m["fields"])
    noun = "property" if len(names) == 1 else "properties"
    type_name = where.node_type(node) or "its type"
    return _Said(
        f'Node template "{node}" is missing the required {noun} {", ".join(names)} (required by {type_name}); '
        "add them under properties.",
        where.node_line(node, "properties") or where.node_line(node),
        node,
        names[0],
    )


def _missing_type(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    name = m["name"]
    if where.node_data(name):
        return _Said(
            f'Node template "{name}" has no type; give it one, such as "type: agora.nodes.Container".',
            where.node_line(name),
            name,
        )
    return _Said(f'Template "{name}" has no type; give it one.', None)


def _missing_output_value(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    name = m["name"]
    return _Said(
        f'Output "{name}" has no value; give it one, such as "value: {{get_attribute: [web, public_address]}}".',
        where.line("topology_template", "outputs", name),
    )


def _missing_data_field(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    names = _names(m["fields"])
    place = _value_place(ctx)
    noun = "field" if len(names) == 1 else "fields"
    return _Said(
        f"A value of type {m['type']}{place} is missing its required {noun} {', '.join(names)}.",
        _context_line(ctx, where),
    )


def _missing_generic(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    names = _names(m["fields"])
    return _Said(f"{m['what']} is missing the required field {', '.join(names)}.", _context_line(ctx, where))


# --- UnknownFieldError


def _unknown_field(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    what, field = m["what"], m["field"]
    node_match = re.match(r'^"(?P<section>\w+)" of template "(?P<node>[^"]*)"$', what)
    if what == "Template":
        return _unknown_section(field, where)
    if node_match:
        return _unknown_in_node(node_match["section"], node_match["node"], field, where)
    named = re.match(r'^(?P<kind>Node template|Input|Output|Data value of type) "(?P<name>[^"]*)"$', what)
    if named:
        kind, name = named["kind"], named["name"]
        if kind == "Node template":
            return _Said(
                f'Node template "{name}" has an unknown key "{field}"; a node template takes {_NODE_KEYS}.',
                where.node_line(name, field),
                name,
            )
        if kind == "Input":
            line = where.line("topology_template", "inputs", name, field)
            if field == "metadata":
                return _Said(
                    f'Input "{name}" has metadata, which TOSCA allows on inputs only from tosca_simple_yaml_1_2; '
                    "declare tosca_definitions_version: tosca_simple_yaml_1_3 to use it.",
                    line,
                )
            return _Said(
                f'Input "{name}" has an unknown key "{field}"; an input takes type, description, default, '
                "required, constraints, status, entry_schema and (from TOSCA 1.2) metadata.",
                line,
            )
        if kind == "Output":
            return _Said(
                f'Output "{name}" has an unknown key "{field}"; an output takes description and value.',
                where.line("topology_template", "outputs", name, field),
            )
        return _Said(
            f'A value of type {name}{_value_place(ctx)} has a field "{field}" that the type does not define; '
            "check its spelling.",
            _context_line(ctx, where),
        )
    typed = re.match(r'^(?:Nodetype|Relationshiptype|Group Type|Policy|Groups|Triggers) ?"?(?P<name>[^"]*)"?$', what)
    if typed:
        file, line = where.type_location(typed["name"], field)
        if file is not None:
            return _Said(f'The type {typed["name"]} has an unknown key "{field}"; check its spelling.', line, file=file)
    if what.startswith("Template "):
        return _Said(
            f'The imported file {what[len("Template ") :]} has an unknown section "{field}"; a file of types '
            "takes tosca_definitions_version, description, metadata, imports, repositories, dsl_definitions, "
            "the *_types sections and topology_template.",
            None,
        )
    return _Said(f'{what} has an unknown key "{field}"; check its spelling.', _context_line(ctx, where))


def _unknown_section(field: str, where: Locator) -> _Said:
    if field in where.main:
        return _Said(
            f'The template has an unknown top-level section "{field}"; TOSCA allows {TOP_LEVEL_SECTIONS}.',
            where.line(field),
        )
    line = where.line("topology_template", field)
    if field == "workflows":
        return _Said(
            "topology_template has a workflows section, which the TOSCA parser Agora uses does not read; "
            "remove it (Agora orders deployment by requirements).",
            line,
        )
    return _Said(f'topology_template has an unknown section "{field}"; it allows {_TOPOLOGY_SECTIONS}.', line)


def _unknown_in_node(section: str, node: str, field: str, where: Locator) -> _Said:
    type_name = where.node_type(node) or "its type"
    if section == "properties":
        return _Said(
            f'Node template "{node}" has a property "{field}" that {type_name} does not define; check the spelling '
            f"(it defines: {_listing(where.property_names(node))}).",
            where.node_line(node, "properties", field),
            node,
            field,
        )
    if section == "requirements":
        return _Said(
            f'Node template "{node}" has a requirement "{field}" that {type_name} does not define '
            f"(it defines: {_listing(where.requirement_names(node))}).",
            where.requirement_line(node, field),
            node,
        )
    if section == "interfaces":
        return _Said(
            f'Node template "{node}" has an unknown interface or operation "{field}"; the Standard interface has '
            "create, configure, start, stop and delete.",
            where.node_line(node, "interfaces"),
            node,
        )
    if section == "capabilities":
        return _Said(
            f'Node template "{node}" has a capability "{field}" that {type_name} does not define.',
            where.node_line(node, "capabilities", field),
            node,
        )
    return _Said(
        f'Node template "{node}" has an unknown {section} entry "{field}".', where.node_line(node, section), node
    )


# --- other TOSCAException classes


def _type_mismatch(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    what, type_name = m["what"], m["type"]
    if what in ("inputs", "node_templates", "relationship_templates", "outputs", "groups", "substitution_mappings"):
        shape = "a mapping" if type_name == "dict" else "a list"
        return _Said(f"topology_template.{what} must be {shape}.", where.line("topology_template", what))
    if what.startswith('"requirements" of template'):
        node = re.findall(r'"([^"]*)"', what)[-1]
        return _Said(
            f'The requirements of node template "{node}" must be a list, such as "- host: server".',
            where.node_line(node, "requirements"),
            node,
        )
    return _Said(
        f"The value {_short(what)}{_value_place(ctx)} must be of type {type_name}.",
        _context_line(ctx, where),
    )


def _invalid_type(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    type_name = m["type"]
    hint = (
        "check the spelling, or import the file that defines it (Agora's types come with "
        f"'imports: [{AGORA_PROFILE_IMPORT}]')"
    )
    node = ctx.node
    if node and where.node_data(node).get("type") == type_name:
        return _Said(
            f'Node template "{node}" has the type "{type_name}", which is not defined; {hint}.',
            where.node_line(node, "type"),
            node,
        )
    file, line, user = where.type_reference(type_name)
    if user is not None:
        return _Said(
            f'Node template "{user}" has the type "{type_name}", which is not defined; {hint}.', line, user, file=file
        )
    return _Said(f'The type "{type_name}" is not defined; {hint}.', line, file=file)


def _invalid_value(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    what = m["what"]
    if what.startswith("["):
        return _Said(
            f"The occurrences {what} are invalid; give [min, max] with 0 <= min <= max and max above 0.",
            _context_line(ctx, where),
        )
    return _Said(f'The value of "{what}"{_value_place(ctx)} is invalid.', _context_line(ctx, where))


def _constraint(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    value, prop, rest = m["value"], m["prop"], m["rest"].rstrip(".")
    rest = re.sub(r'"([^"]*)"', r"\1", rest)
    if ctx.input and not ctx.node:
        return _Said(
            f'Input "{ctx.input}": the default value {value} {rest}.',
            where.line("topology_template", "inputs", ctx.input, "default")
            or where.line("topology_template", "inputs", ctx.input),
        )
    if ctx.node:
        return _Said(
            f'Property "{prop}" of node template "{ctx.node}": the value {value} {rest}.',
            where.property_line(ctx.node, prop),
            ctx.node,
            prop,
        )
    return _Said(f'The value {value} of property "{prop}" {rest}.', None)


def _occurrences(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    req, node = m["req"], m["node"]
    data = where.node_data(node)
    type_name = where.node_type(node) or "its type"
    definition = where.registry.requirement_definition(data.get("type"), req) or {}
    low, high = 1, "UNBOUNDED"
    occurrences = definition.get("occurrences")
    if isinstance(occurrences, list) and len(occurrences) == 2:
        low, high = occurrences[0], occurrences[1]
    reqs = data.get("requirements")
    count = sum(1 for r in reqs if isinstance(r, dict) and req in r) if isinstance(reqs, list) else 0
    target = definition.get("node")
    target_hint = f" pointing at a node template of type {target}" if isinstance(target, str) else ""
    if isinstance(low, int) and count < low:
        return _Said(
            f'Node template "{node}" needs the requirement "{req}"{target_hint}: its type {type_name} requires it '
            f'at least {low} time{"s" if low != 1 else ""}. Add "- {req}: <node template>" under requirements.',
            where.node_line(node, "requirements") or where.node_line(node),
            node,
        )
    return _Said(
        f'Node template "{node}" has the requirement "{req}" {count} times; its type {type_name} allows at most '
        f"{high}.",
        where.requirement_line(node, req),
        node,
    )


def _version(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    version = m["version"]
    imported = ""
    if " in " in version:
        version, imported = version.split(" in ", 1)
    where_said = f" in the imported file {imported}" if imported else ""
    if version == "tosca_simple_yaml_1_1":
        advice = (
            "tosca_simple_yaml_1_1 is not a version the TOSCA parser reads; declare tosca_simple_yaml_1_2 "
            "(1.1 templates are usually valid 1.2 unchanged) or tosca_simple_yaml_1_3."
        )
    else:
        advice = f"use one of {', '.join(SUPPORTED_VERSIONS)}."
    return _Said(
        f'tosca_definitions_version "{version}"{where_said} is not supported: {advice}',
        where.line("tosca_definitions_version") if not imported else None,
    )


def _unknown_input(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    name = m["name"]
    if ctx.node:
        props = where.node_data(ctx.node).get("properties")
        prop = (
            next(
                (str(k) for k, v in props.items() if isinstance(v, dict) and v.get("get_input") in (name, [name])),
                None,
            )
            if isinstance(props, dict)
            else None
        )
        place = f'Property "{prop}" of node template "{ctx.node}"' if prop else f'Node template "{ctx.node}"'
        line = where.property_line(ctx.node, prop) if prop else where.node_line(ctx.node)
        return _Said(
            f'{place} asks for the input "{name}" (get_input), which topology_template.inputs does not declare; '
            "declare it or fix the name.",
            line,
            ctx.node,
            prop,
        )
    place = f'Output "{ctx.output}"' if ctx.output else "A get_input"
    line = where.line("topology_template", "outputs", ctx.output) if ctx.output else None
    return _Said(
        f'{place} asks for the input "{name}", which topology_template.inputs does not declare; declare it or fix '
        "the name.",
        line,
    )


def _unsupported_type(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    type_name = m["type"]
    return _Said(
        f"The type {type_name} is not supported by the TOSCA parser; it knows the TOSCA 1.0 names "
        "tosca.nodes.BlockStorage and tosca.nodes.ObjectStorage instead.",
        where.node_line(ctx.node, "type") if ctx.node else None,
    )


# --- Python exceptions the parser uses too


def _missing_target(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    target, node = m["target"], m["node"]
    return _Said(
        f'Node template "{node}" requires "{target}", but there is no node template named "{target}".',
        where.requirement_line(node, target=target),
        node,
    )


def _missing_node_in_function(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    target = m["target"]
    place = f'Node template "{ctx.node}"' if ctx.node else (f'Output "{ctx.output}"' if ctx.output else "A function")
    line = (
        where.node_line(ctx.node)
        if ctx.node
        else (where.line("topology_template", "outputs", ctx.output) if ctx.output else None)
    )
    return _Said(f'{place} refers to node template "{target}", which does not exist.', line)


def _lookup_by_type(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    target, node = m["target"], m["node"]
    return _Said(
        f'Node template "{node}" names the type {target} as a requirement target; name a node template instead '
        "(Agora does not pick nodes by type).",
        where.requirement_line(node, target=target),
        node,
    )


def _invalid_input_type(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    name = ctx.input
    inputs = _get(where.main, "topology_template", "inputs")
    spec = inputs.get(name) if isinstance(inputs, dict) and name is not None else None
    raw = spec.get("type") if isinstance(spec, dict) else None
    return _Said(
        f'Input "{name}" has the type "{raw}", which is not a TOSCA input type; use {_INPUT_TYPES}.',
        where.line("topology_template", "inputs", name, "type"),
    )


def _value_error(m: re.Match[str], ctx: Context, where: Locator) -> _Said:
    detail = clean(m["detail"])
    if ctx.input and not ctx.node:
        return _Said(
            f'Input "{ctx.input}": the default value {detail[0].lower()}{detail[1:]}',
            where.line("topology_template", "inputs", ctx.input, "default")
            or where.line("topology_template", "inputs", ctx.input),
        )
    if ctx.node and ctx.property:
        return _Said(
            f'Property "{ctx.property}" of node template "{ctx.node}": {detail}',
            where.property_line(ctx.node, ctx.property),
        )
    return _generic(detail, ctx, where)


def _value_place(ctx: Context) -> str:
    if ctx.node and ctx.property:
        return f' in property "{ctx.property}" of node template "{ctx.node}"'
    if ctx.input:
        return f' in input "{ctx.input}"'
    if ctx.node:
        return f' in node template "{ctx.node}"'
    return ""


def _context_line(ctx: Context, where: Locator) -> int | None:
    if ctx.node and ctx.property:
        return where.property_line(ctx.node, ctx.property)
    if ctx.node:
        return where.node_line(ctx.node)
    if ctx.input:
        return where.line("topology_template", "inputs", ctx.input)
    if ctx.output:
        return where.line("topology_template", "outputs", ctx.output)
    return None


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _get(data: Any, *path: Any) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _rule(class_name: str, pattern: str, handler: _Handler) -> tuple[str, re.Pattern[str], _Handler]:
    return class_name, re.compile(pattern), handler


_RULES: tuple[tuple[str, re.Pattern[str], _Handler], ...] = (
    _rule(
        "MissingRequiredFieldError",
        r'^Template is missing required field "tosca_definitions_version"',
        _missing_version,
    ),
    _rule(
        "MissingRequiredFieldError",
        r'^"properties" of template "(?P<node>[^"]*)" is missing required field "(?P<fields>.*)"\.$',
        _missing_properties,
    ),
    _rule("MissingRequiredFieldError", r'^Template "(?P<name>[^"]*)" is missing required field "type"', _missing_type),
    _rule(
        "MissingRequiredFieldError",
        r'^Output "(?P<name>[^"]*)" is missing required field "value"',
        _missing_output_value,
    ),
    _rule(
        "MissingRequiredFieldError",
        r'^Data value of type "(?P<type>[^"]*)" is missing required field "(?P<fields>.*)"\.$',
        _missing_data_field,
    ),
    _rule(
        "MissingRequiredFieldError", r'^(?P<what>.*) is missing required field "(?P<fields>.*)"\.$', _missing_generic
    ),
    _rule("UnknownFieldError", r'^(?P<what>.*) contains unknown field "(?P<field>[^"]*)"', _unknown_field),
    _rule("TypeMismatchError", r'^(?P<what>.*) must be of type "(?P<type>[^"]*)"', _type_mismatch),
    _rule("InvalidTypeError", r'^Type "(?P<type>[^"]*)" is not a valid type', _invalid_type),
    _rule("InvalidPropertyValueError", r'^Value of property "(?P<what>.*)" is invalid', _invalid_value),
    _rule(
        "ValidationError",
        r'^Relationship "(?P<req>[^"]*)" in template "(?P<node>[^"]*)" has a wrong number of occurrences',
        _occurrences,
    ),
    _rule("ValidationError", r'^The value "(?P<value>.*)" of property "(?P<prop>[^"]*)" (?P<rest>.*)$', _constraint),
    _rule("InvalidTemplateVersion", r'^The template version "(?P<version>[^"]*)" is invalid', _version),
    _rule("UnknownInputError", r'^Unknown input "(?P<name>.*)"\.', _unknown_input),
    _rule("UnsupportedTypeError", r'^Type "(?P<type>[^"]*)" is valid TOSCA type', _unsupported_type),
    _rule("KeyError", r'^Node template "(?P<target>[^"]*)" was not found in "(?P<node>[^"]*)"', _missing_target),
    _rule("KeyError", r'^Node template "(?P<target>[^"]*)" was not found', _missing_node_in_function),
    _rule(
        "NotImplementedError",
        r'^Lookup by TOSCA types is not supported\. Requirement node "(?P<target>[^"]*)" for "(?P<node>[^"]*)"',
        _lookup_by_type,
    ),
    _rule("ValueError", r'^Invalid type "', _invalid_input_type),
    _rule("ValueError", r"^(?P<detail>.*)$", _value_error),
)
