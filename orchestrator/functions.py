"""TOSCA intrinsic functions: get_input, get_property, get_attribute, concat, join, token, get_artifact.

Pure. A value is resolved as far as what is known allows: at planning time the
attributes of nodes not yet deployed are unknown, so expressions that need them stay
as they are and are resolved again when the step that uses them runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

FUNCTIONS = ("get_input", "get_property", "get_attribute", "concat", "join", "token", "get_artifact")


class Unresolved(Exception):
    """An expression needs a value that is not known yet."""


class FunctionError(ValueError):
    """An expression is malformed or names something that does not exist."""


@dataclass(frozen=True)
class Context:
    """What expressions can see. `attribute` is None while planning: attributes are not known yet."""

    inputs: Mapping[str, Any]
    property: Callable[[str, str], Any]  # (node, property) → value; raises KeyError when unknown
    artifact: Callable[[str, str], Any]  # (node, artifact) → file
    attribute: Callable[[str, str], Any] | None = None  # (node, attribute) → value; raises Unresolved
    hidden_inputs: frozenset[str] = frozenset()  # secret inputs: left unresolved so plans never hold them


def function_of(value: Any) -> tuple[str, Any] | None:
    if isinstance(value, Mapping) and len(value) == 1:
        name, args = next(iter(value.items()))
        if name in FUNCTIONS:
            return str(name), args
    return None


def attribute_references(value: Any, node: str) -> set[str]:
    """The nodes whose attributes the value reads (SELF counts as `node`)."""
    found: set[str] = set()
    function = function_of(value)
    if function and function[0] == "get_attribute" and isinstance(function[1], list) and function[1]:
        found.add(node if function[1][0] == "SELF" else str(function[1][0]))
    if isinstance(value, Mapping):
        for item in value.values():
            found |= attribute_references(item, node)
    elif isinstance(value, list):
        for item in value:
            found |= attribute_references(item, node)
    return found


def resolve(value: Any, context: Context, node: str) -> Any:
    """The value with every expression that can be evaluated now replaced by its result."""
    try:
        return _resolve(value, context, node)
    except Unresolved:
        return _partial(value, context, node)


def resolve_fully(value: Any, context: Context, node: str) -> Any:
    """Like resolve, but raises Unresolved when something is still unknown."""
    return _resolve(value, context, node)


def _partial(value: Any, context: Context, node: str) -> Any:
    # Resolve the parts that can be; keep an expression whose own arguments are not all known.
    if function_of(value):
        try:
            return _resolve(value, context, node)
        except Unresolved:
            name, args = function_of(value)  # type: ignore[misc]
            if isinstance(args, list):
                return {name: [_partial(a, context, node) for a in args]}
            return value
    if isinstance(value, Mapping):
        return {k: _partial(v, context, node) for k, v in value.items()}
    if isinstance(value, list):
        return [_partial(v, context, node) for v in value]
    return value


def _node_name(ref: Any, node: str) -> str:
    if ref == "SELF":
        return node
    if not isinstance(ref, str):
        raise FunctionError(f"{ref!r} is not a node name.")
    return ref


def _resolve(value: Any, context: Context, node: str) -> Any:
    function = function_of(value)
    if function is None:
        if isinstance(value, Mapping):
            return {k: _resolve(v, context, node) for k, v in value.items()}
        if isinstance(value, list):
            return [_resolve(v, context, node) for v in value]
        return value
    name, args = function
    if name == "get_input":
        input_name = args[0] if isinstance(args, list) and args else args
        if input_name in context.hidden_inputs:
            raise Unresolved(input_name)
        if input_name not in context.inputs:
            raise FunctionError(f"get_input names {input_name!r}, which has no value.")
        return context.inputs[input_name]
    if name in ("get_property", "get_attribute", "get_artifact"):
        if not isinstance(args, list) or len(args) < 2:
            raise FunctionError(f"{name} takes [node, name]; got {args!r}.")
        target = _node_name(args[0], node)
        key = str(args[-1])
        if name == "get_property":
            try:
                return _resolve(context.property(target, key), context, target)
            except KeyError:
                raise FunctionError(f"get_property: node {target!r} has no property {key!r}.") from None
        if name == "get_artifact":
            try:
                return context.artifact(target, key)
            except KeyError:
                raise FunctionError(f"get_artifact: node {target!r} has no artifact {key!r}.") from None
        if context.attribute is None:
            raise Unresolved(f"{target}.{key}")
        return context.attribute(target, key)
    if name == "concat":
        if not isinstance(args, list):
            raise FunctionError("concat takes a list.")
        return "".join(_text(_resolve(a, context, node)) for a in args)
    if name == "join":
        if not isinstance(args, list) or not args or not isinstance(args[0], list):
            raise FunctionError("join takes [[values], delimiter].")
        delimiter = _text(args[1]) if len(args) > 1 else ""
        return delimiter.join(_text(_resolve(a, context, node)) for a in args[0])
    if name == "token":
        if not isinstance(args, list) or len(args) != 3:
            raise FunctionError("token takes [string, delimiters, index].")
        text = _text(_resolve(args[0], context, node))
        delimiters, index = str(args[1]), args[2]
        parts = [text]
        for delimiter in delimiters:
            parts = [piece for part in parts for piece in part.split(delimiter)]
        if not isinstance(index, int) or not 0 <= index < len(parts):
            # The text is not quoted: it may be (or hold) a secret input.
            counted = f"{len(parts)} part" + ("s" if len(parts) != 1 else "")
            raise FunctionError(f"token: index {index!r} is out of range; the text has {counted}.")
        return parts[index]
    raise FunctionError(f"Unknown function {name}.")  # pragma: no cover - FUNCTIONS lists them all


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
