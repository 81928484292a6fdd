"""TOSCA intrinsic functions (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.functions import Context, FunctionError, Unresolved, resolve, resolve_fully

PROPS = {"web": {"port": 8080, "name": {"get_input": "site"}}}
ATTRS = {"web": {"public_address": "203.0.113.5", "public_port": 30001}}


def context(*, deployed: bool = False, hidden: frozenset[str] = frozenset()) -> Context:
    def attribute(node: str, name: str) -> Any:
        try:
            return ATTRS[node][name]
        except KeyError:
            raise Unresolved(f"{node}.{name}") from None

    return Context(
        inputs={"site": "forms", "password": "s3cret"},
        property=lambda node, name: PROPS[node][name],
        artifact=lambda node, name: {"image": "nginx:1.25"}[name],
        attribute=attribute if deployed else None,
        hidden_inputs=hidden,
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"get_input": "site"}, "forms"),
        ({"get_property": ["web", "port"]}, 8080),
        ({"get_property": ["SELF", "name"]}, "forms"),
        ({"get_artifact": ["SELF", "image"]}, "nginx:1.25"),
        ({"concat": ["http://", {"get_input": "site"}, ":", 80]}, "http://forms:80"),
        ({"join": [["a", {"get_input": "site"}, "c"], ","]}, "a,forms,c"),
        ({"token": ["10.0.0.1:8080", ":", 1]}, "8080"),
        ({"environment": {"SITE": {"get_input": "site"}}}, {"environment": {"SITE": "forms"}}),
    ],
)
def test_functions_evaluate(expression: Any, expected: Any) -> None:
    assert resolve(expression, context(), "web") == expected


def test_attributes_resolve_once_deployed_and_stay_expressions_before() -> None:
    url = {"concat": ["http://", {"get_attribute": ["web", "public_address"]}, ":", {"get_input": "site"}]}
    assert resolve(url, context(), "web") == {
        "concat": ["http://", {"get_attribute": ["web", "public_address"]}, ":", "forms"]
    }
    assert resolve_fully(url, context(deployed=True), "web") == "http://203.0.113.5:forms"


def test_hidden_inputs_stay_unresolved() -> None:
    assert resolve({"get_input": "password"}, context(hidden=frozenset({"password"})), "web") == {
        "get_input": "password"
    }


@pytest.mark.parametrize(
    "expression",
    [{"get_input": "nope"}, {"get_property": ["web", "nope"]}, {"token": ["a:b", ":", 5]}, {"join": "x"}],
)
def test_malformed_or_unknown_references_raise_a_clear_error(expression: Any) -> None:
    with pytest.raises(FunctionError):
        resolve(expression, context(), "web")
