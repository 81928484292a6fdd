"""A secret never reaches an output: validation refuses a template whose output can carry one.

Outputs are shown to everyone who sees the deployment (the subscription, the deployment page, its
timeline), so an output that reads a secret input, directly, through concat/join/token or through
a chain of get_property, is a policy error naming the output and the secret.
"""

from __future__ import annotations

import pytest

from orchestrator.tosca import NodeTemplate, ProblemKind, Report, Severity, Template, validate_bytes
from orchestrator.tosca.model import Input, Metadata, Output
from orchestrator.tosca.secret_flow import SecretSource, secret_sources

TEMPLATE = """\
tosca_definitions_version: tosca_simple_yaml_1_3
imports: [agora/v1/profile.yaml]
topology_template:
  inputs:
    api_key:
      type: string
      metadata:
        secret: true
    site:
      type: string
      default: Citizen requests
  node_templates:
    web:
      type: agora.nodes.Container
      properties:
        image: agora/busybox:latest
        environment:
          SITE: { get_input: site }
          API_KEY: { get_input: api_key }
    origin:
      type: agora.nodes.Secret
      properties:
        value: { get_input: api_key }
    relay:
      type: agora.nodes.Secret
      properties:
        value: { concat: ["key:", { get_property: [origin, value] }] }
    literal:
      type: agora.nodes.Secret
      properties:
        value: a-literal-password
  outputs:
    url:
      value: { concat: ["http://", { get_attribute: [web, public_address] }, "/"] }
    title:
      value: { get_input: site }
    leak:
      value: %s
"""


def validate(output_value: str) -> Report:
    return validate_bytes((TEMPLATE % output_value).encode(), filename="service.yaml")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("{ get_input: api_key }", 'the secret input "api_key"'),
        ('{ concat: ["https://user:", { get_input: api_key }, "@example.org"] }', 'the secret input "api_key"'),
        ('{ join: [["a", { get_input: api_key }], ","] }', 'the secret input "api_key"'),
        ('{ token: [{ get_input: api_key }, ":", 0] }', 'the secret input "api_key"'),
        (
            '{ concat: ["k=", { token: [{ join: [[{ get_input: api_key }, "x"], ","] }, ",", 0] }] }',
            'the secret input "api_key"',
        ),
        (
            "{ get_property: [web, environment] }",
            'the secret input "api_key" (through the property "environment" of node template "web")',
        ),
        (
            "{ get_property: [relay, value] }",
            'the secret input "api_key" (through the property "value" of node template "relay", the property '
            '"value" of node template "origin")',
        ),
        ("{ get_property: [literal, value] }", 'the value of the secret node template "literal"'),
    ],
)
def test_an_output_that_can_carry_a_secret_makes_the_template_not_deployable(value: str, shown: str) -> None:
    report = validate(value)
    assert (report.valid, report.deployable) == (True, False), [p.message for p in report.problems]
    (problem,) = [p for p in report.problems if p.severity is Severity.ERROR]
    assert problem.kind is ProblemKind.POLICY
    assert problem.message.startswith(f'Output "leak" would show {shown};'), problem.message
    assert "outputs are shown to everyone who sees the deployment" in problem.message
    assert "agora.nodes.Secret" in problem.message  # what to do instead
    assert (problem.file, problem.line) == ("service.yaml", 38)  # the output's value


def test_outputs_without_secrets_stay_deployable() -> None:
    report = validate("{ get_property: [web, image] }")
    assert (report.valid, report.deployable, report.problems) == (True, True, ())


def test_one_problem_per_output_names_every_secret_it_shows() -> None:
    report = validate("{ concat: [{ get_input: api_key }, { get_property: [literal, value] }] }")
    (problem,) = report.problems
    assert problem.message.startswith(
        'Output "leak" would show the secret input "api_key" and the value of the secret node template "literal";'
    )


# --- the analysis itself, on Agora's plain data


def _node(name: str, value: object, type_name: str = "agora.nodes.Secret") -> NodeTemplate:
    return NodeTemplate(name=name, type=type_name, types=(type_name, "tosca.nodes.Root"), properties={"value": value})


def _template(*nodes: NodeTemplate) -> Template:
    return Template(
        metadata=Metadata(),
        inputs=(Input("api_key", "string", secret=True), Input("site", "string")),
        nodes=nodes,
        outputs=(Output("leak", "", {"get_property": [nodes[0].name, "value"]}),),
    )


def test_a_cycle_of_properties_ends_and_still_finds_the_secret_in_it() -> None:
    template = _template(
        _node("a", {"get_property": ["b", "value"]}, "agora.nodes.Container"),
        _node("b", {"concat": [{"get_property": ["a", "value"]}, {"get_input": "api_key"}]}, "agora.nodes.Container"),
    )
    assert secret_sources(template.outputs[0].value, template) == [
        SecretSource("api_key", is_input=True, via=(("a", "value"), ("b", "value")))
    ]


def test_a_cycle_without_secrets_ends_with_none() -> None:
    template = _template(
        _node("a", {"get_property": ["b", "value"]}, "agora.nodes.Container"),
        _node("b", {"get_property": ["SELF", "value"]}, "agora.nodes.Container"),
    )
    assert secret_sources(template.outputs[0].value, template) == []


def test_a_chain_longer_than_pythons_recursion_limit_is_followed_to_its_end() -> None:
    count = 3000
    nodes = [
        _node(f"n{i}", {"get_property": [f"n{i + 1}", "value"]}, "agora.nodes.Container") for i in range(count - 1)
    ]
    nodes.append(_node(f"n{count - 1}", {"get_input": ["api_key"]}, "agora.nodes.Container"))
    template = _template(*nodes)
    (source,) = secret_sources(template.outputs[0].value, template)
    assert (source.name, source.is_input, len(source.via)) == ("api_key", True, count)


def test_attributes_and_artifacts_carry_no_input_and_unknown_nodes_are_skipped() -> None:
    template = _template(_node("a", "plain", "agora.nodes.Container"))
    value = {
        "concat": [
            {"get_attribute": ["a", "public_address"]},
            {"get_artifact": ["a", "image"]},
            {"get_property": ["missing", "value"]},
            {"get_property": ["a"]},
            {"get_input": "site"},
        ]
    }
    assert secret_sources(value, template) == []
