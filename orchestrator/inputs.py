"""Checks a subscriber's input values against a template's inputs schema.

The schema is the one `orchestrator.tosca.Report.inputs_schema()` produces:
{name: {"type", "description", "default", "constraints": [{op: arg}], "required", "secret"}}.
No database. Messages are sentences for the subscriber, translated into the active language
(Django's gettext), because the portal shows them next to the form's fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from orchestrator.tosca.units import size_in_bytes, time_in_seconds


@dataclass(frozen=True)
class InputError:
    input: str
    message: str


def _coerce(type_name: str, value: Any) -> tuple[Any, str | None]:
    """Returns the value in its TOSCA type, or an error sentence."""
    if type_name == "string":
        return (value, None) if isinstance(value, str) else (value, _("must be a string"))
    if type_name == "integer":
        if isinstance(value, bool):
            return value, _("must be a whole number")
        if isinstance(value, int):
            return value, None
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value), None
        return value, _("must be a whole number")
    if type_name == "float":
        if isinstance(value, bool):
            return value, _("must be a number")
        if isinstance(value, int | float):
            return float(value), None
        try:
            return float(value), None
        except (TypeError, ValueError):
            return value, _("must be a number")
    if type_name == "boolean":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true", None
        return value, _("must be true or false")
    if type_name == "scalar-unit.size":
        return (value, None) if size_in_bytes(value) is not None else (value, _("must be a size such as 512 MB"))
    if type_name == "scalar-unit.time":
        return (value, None) if time_in_seconds(value) is not None else (value, _("must be a duration such as 30 s"))
    if type_name == "list":
        return (value, None) if isinstance(value, list) else (value, _("must be a list"))
    if type_name == "map":
        return (value, None) if isinstance(value, dict) else (value, _("must be a map"))
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
            return _("must be %(value)s") % {"value": arg}
        if op == "greater_than" and not v > _comparable(type_name, arg):
            return _("must be greater than %(limit)s") % {"limit": arg}
        if op == "greater_or_equal" and not v >= _comparable(type_name, arg):
            return _("must be at least %(limit)s") % {"limit": arg}
        if op == "less_than" and not v < _comparable(type_name, arg):
            return _("must be less than %(limit)s") % {"limit": arg}
        if op == "less_or_equal" and not v <= _comparable(type_name, arg):
            return _("must be at most %(limit)s") % {"limit": arg}
        if op == "in_range":
            low, high = (_comparable(type_name, a) for a in arg)
            if not low <= v <= high:
                return _("must be between %(low)s and %(high)s") % {"low": arg[0], "high": arg[1]}
        if op == "valid_values" and value not in arg:
            return _("must be one of %(values)s") % {"values": ", ".join(str(a) for a in arg)}
        if op == "length" and len(value) != arg:
            return _("must have length %(length)s") % {"length": arg}
        if op == "min_length" and len(value) < arg:
            if isinstance(value, str):
                return _("must have at least %(count)s characters") % {"count": arg}
            return _("needs at least %(count)s items") % {"count": arg}
        if op == "max_length" and len(value) > arg:
            if isinstance(value, str):
                return _("must have at most %(count)s characters") % {"count": arg}
            return _("takes at most %(count)s items") % {"count": arg}
        if op == "pattern" and not re.fullmatch(str(arg), str(value)):
            return _("must match the pattern %(pattern)s") % {"pattern": arg}
    except TypeError:
        return _("cannot be compared with %(value)s") % {"value": arg}
    return None


def check_input_values(
    schema: dict[str, dict[str, Any]], values: dict[str, Any]
) -> tuple[dict[str, Any], list[InputError]]:
    """Returns the values to deploy with (defaults filled in, types coerced) and every error found."""
    errors: list[InputError] = []
    clean: dict[str, Any] = {}
    for name in values:
        if name not in schema:
            errors.append(InputError(name, _("The template has no input named %(name)r.") % {"name": name}))
    for name, spec in schema.items():
        type_name = str(spec.get("type", "string"))
        if name in values and values[name] is not None:
            value, problem = _coerce(type_name, values[name])
            if problem:
                errors.append(InputError(name, _("%(name)s %(problem)s.") % {"name": name, "problem": problem}))
                continue
            for constraint in spec.get("constraints") or []:
                for op, arg in constraint.items():
                    problem = _check_constraint(type_name, value, op, arg)
                    if problem:
                        errors.append(InputError(name, _("%(name)s %(problem)s.") % {"name": name, "problem": problem}))
            clean[name] = value
        elif spec.get("has_default", spec.get("default") is not None):
            # A secret's default stays in the template (the schema never carries it); the deployment reads it there.
            if not spec.get("secret"):
                clean[name] = spec.get("default")
        elif spec.get("required", True):
            errors.append(InputError(name, _("%(name)s is required.") % {"name": name}))
    return clean, errors
