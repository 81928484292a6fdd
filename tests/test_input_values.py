"""Input values against a template's inputs schema (pure; no database)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.inputs import check_input_values

SCHEMA: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "required": True, "constraints": [{"min_length": 3}, {"pattern": "[a-z-]+"}]},
    "replicas": {"type": "integer", "default": 1, "constraints": [{"in_range": [1, 5]}]},
    "ratio": {"type": "float", "required": False},
    "debug": {"type": "boolean", "default": False},
    "memory": {"type": "scalar-unit.size", "default": "256 MB", "constraints": [{"less_or_equal": "2 GB"}]},
    "tier": {"type": "string", "default": "small", "constraints": [{"valid_values": ["small", "large"]}]},
}


def test_defaults_fill_missing_values_and_types_are_coerced() -> None:
    values, errors = check_input_values(SCHEMA, {"name": "forms", "replicas": "3", "debug": "true"})
    assert errors == []
    assert values == {"name": "forms", "replicas": 3, "debug": True, "memory": "256 MB", "tier": "small"}


@pytest.mark.parametrize(
    ("given", "name", "message"),
    [
        ({}, "name", "name is required."),
        ({"name": "ab"}, "name", "at least 3 characters"),
        ({"name": "ABC"}, "name", "must match the pattern"),
        ({"name": "abc", "replicas": 6}, "replicas", "between 1 and 5"),
        ({"name": "abc", "replicas": True}, "replicas", "whole number"),
        ({"name": "abc", "ratio": "half"}, "ratio", "must be a number"),
        ({"name": "abc", "debug": "maybe"}, "debug", "true or false"),
        ({"name": "abc", "memory": "4 GB"}, "memory", "at most 2 GB"),
        ({"name": "abc", "memory": "lots"}, "memory", "size such as"),
        ({"name": "abc", "tier": "huge"}, "tier", "one of small, large"),
        ({"name": "abc", "colour": "red"}, "colour", "no input named"),
    ],
)
def test_each_violation_names_the_input_and_what_is_expected(given: dict[str, Any], name: str, message: str) -> None:
    _, errors = check_input_values(SCHEMA, given)
    assert [e.input for e in errors] == [name]
    assert message in errors[0].message


def test_a_secret_with_a_default_is_not_required_and_its_default_is_not_copied() -> None:
    schema = {"password": {"type": "string", "secret": True, "has_default": True, "default": None}}
    values, errors = check_input_values(schema, {})
    assert errors == [] and values == {}
