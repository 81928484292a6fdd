"""Checks a subscriber's input values against a template's inputs schema.

The schema is the one `orchestrator.tosca.Report.inputs_schema()` produces:
{name: {"type", "description", "default", "constraints": [{op: arg}], "required", "secret"}}.
Pure: no Django, no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orchestrator.tosca.units import size_in_bytes, time_in_seconds


@dataclass(frozen=True)
class InputError:
    input: str
    message: str


def _coerce(type_name: str, value: Any) -> tuple[Any, str | None]:
    """Returns the value in its TOSCA type, or an error sentence."""
    if type_name == "string":
        return (value, None) if isinstance(value, str) else (value, "must be a string")
    if type_name == "integer":
        if isinstance(value, bool):
            return value, "must be a whole number"
        if isinstance(value, int):
            return value, None
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value), None
        return value, "must be a whole number"
    if type_name == "float":
        if isinstance(value, bool):
            return value, "must be a number"
        if isinstance(value, int | float):
            return float(value), None
        try:
            return float(value), None
        except (TypeError, ValueError):
            return value, "must be a number"
    if type_name == "boolean":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true", None
        return value, "must be true or false"
    if type_name == "scalar-unit.size":
        return (value, None) if size_in_bytes(value) is not None else (value, "must be a size such as 512 MB")
    if type_name == "scalar-unit.time":
        return (value, None) if time_in_seconds(value) is not None else (value, "must be a duration such as 30 s")
    if type_name == "list":
        return (value, None) if isinstance(value, list) else (value, "must be a list")
    if type_name == "map":
        return (value, None) if isinstance(value, dict) else (value, "must be a map")
    # timestamp, version and data types: accepted as given; the deployment checks them again.
    return value, None


def _comparable(type_name: str, value: Any) -> Any:
    if type_name == "scalar-unit.size":
        return size_in_bytes(value)
    if type_name == "scalar-unit.time":
        return time_in_seconds(value)
    return value


def _check_constraint(type_name: str, value: Any, op: str, arg: Any) -> str | None:
    v = _comparable(type_name, value)
    try:
        if op == "equal" and v != _comparable(type_name, arg):
            return f"must be {arg}"
        if op == "greater_than" and not v > _comparable(type_name, arg):
            return f"must be greater than {arg}"
        if op == "greater_or_equal" and not v >= _comparable(type_name, arg):
            return f"must be at least {arg}"
        if op == "less_than" and not v < _comparable(type_name, arg):
            return f"must be less than {arg}"
        if op == "less_or_equal" and not v <= _comparable(type_name, arg):
            return f"must be at most {arg}"
        if op == "in_range":
            low, high = (_comparable(type_name, a) for a in arg)
            if not low <= v <= high:
                return f"must be between {arg[0]} and {arg[1]}"
        if op == "valid_values" and value not in arg:
            return "must be one of " + ", ".join(str(a) for a in arg)
        if op == "length" and len(value) != arg:
            return f"must have length {arg}"
        if op == "min_length" and len(value) < arg:
            return f"must have at least {arg} characters" if isinstance(value, str) else f"needs at least {arg} items"
        if op == "max_length" and len(value) > arg:
            return f"must have at most {arg} characters" if isinstance(value, str) else f"takes at most {arg} items"
        if op == "pattern" and not re.fullmatch(str(arg), str(value)):
            return f"must match the pattern {arg}"
    except TypeError:
        return f"cannot be compared with {arg}"
    return None


def check_input_values(
    schema: dict[str, dict[str, Any]], values: dict[str, Any]
) -> tuple[dict[str, Any], list[InputError]]:
    """Returns the values to deploy with (defaults filled in, types coerced) and every error found."""
    errors: list[InputError] = []
    clean: dict[str, Any] = {}
    for name in values:
        if name not in schema:
            errors.append(InputError(name, f"The template has no input named {name!r}."))
    for name, spec in schema.items():
        type_name = str(spec.get("type", "string"))
        if name in values and values[name] is not None:
            value, problem = _coerce(type_name, values[name])
            if problem:
                errors.append(InputError(name, f"{name} {problem}."))
                continue
            for constraint in spec.get("constraints") or []:
                for op, arg in constraint.items():
                    problem = _check_constraint(type_name, value, op, arg)
                    if problem:
                        errors.append(InputError(name, f"{name} {problem}."))
            clean[name] = value
        elif spec.get("has_default", spec.get("default") is not None):
            # A secret's default stays in the template (the schema never carries it); the deployment reads it there.
            if not spec.get("secret"):
                clean[name] = spec.get("default")
        elif spec.get("required", True):
            errors.append(InputError(name, f"{name} is required."))
    return clean, errors
