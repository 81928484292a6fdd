from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from toscaparser.elements.entity_type import EntityType

from orchestrator.tosca import (
    Limits,
    Problem,
    ProblemKind,
    Report,
    Severity,
    checker,
    validate_bytes,
    validate_path,
)
from tests.orchestrator.conftest import CORPUS, PROFILE_TEMPLATE, zip_folder

AGORA_WEB = (CORPUS / "single" / "agora_web.yaml").read_bytes()


def validate(text: str) -> Report:
    return validate_bytes(text.encode(), filename="service.yaml")


def find(report: Report, words: str) -> Problem:
    found = [p for p in report.problems if words in p.message]
    assert found, [p.message for p in report.problems]
    return found[0]


def test_a_good_template_is_valid_and_deployable_with_no_problems() -> None:
    report = validate_bytes(AGORA_WEB, filename="agora_web.yaml")
    assert (report.valid, report.deployable, report.problems) == (True, True, ())


def test_metadata_comes_from_the_metadata_section() -> None:
    template = validate_bytes(AGORA_WEB, filename="agora_web.yaml").template
    assert template is not None
    meta = template.metadata
    assert (meta.template_name, meta.template_version, meta.template_author) == ("agora-web", "1.2.0", "OpenCivic")
    assert meta.description == "A small web application with its database, on Agora's profile."
    assert meta.tosca_version == "tosca_simple_yaml_1_3"


def test_metadata_of_tosca_1_0_comes_from_the_top_level() -> None:
    report = validate_path(CORPUS / "single" / "compute_1_0_no_scripts.yaml")
    assert report.template is not None
    assert report.template.metadata.template_name == "bare-web-server"
    assert report.template.metadata.template_version == "1.0"


def test_inputs_schema_has_types_constraints_defaults_and_secrets() -> None:
    schema = validate_bytes(AGORA_WEB, filename="agora_web.yaml").inputs_schema()
    assert schema["replicas"] == {
        "type": "integer",
        "description": "How many copies of the web server run.",
        "default": 2,
        "has_default": True,
        "constraints": [{"in_range": [1, 5]}],
        "required": True,
        "secret": False,
    }
    assert schema["db_password"]["secret"] is True
    assert schema["db_password"]["constraints"] == [{"min_length": 12}]
    assert schema["db_password"]["has_default"] is False


def test_a_secret_inputs_default_never_leaves_the_template() -> None:
    text = PROFILE_TEMPLATE.replace(
        "topology_template:\n",
        "topology_template:\n  inputs:\n    token:\n      type: string\n      default: s3cr3t-value\n"
        "      metadata:\n        secret: true\n",
    )
    report = validate(text)
    assert report.inputs_schema()["token"]["default"] is None
    assert report.inputs_schema()["token"]["has_default"] is True
    assert "s3cr3t-value" not in json.dumps(report.to_dict())
    warning = find(report, 'The secret input "token" has a default')
    assert (warning.severity, warning.kind) == (Severity.WARNING, ProblemKind.POLICY)
    assert report.deployable


def test_nodes_requirements_artifacts_and_operations() -> None:
    report = validate_path(CORPUS / "single" / "agora_web.yaml")
    assert report.template is not None
    web = report.template.node("web")
    db = report.template.node("db")
    assert web is not None and db is not None
    assert web.type == "agora.nodes.Container"
    assert web.types == ("agora.nodes.Container", "tosca.nodes.Root")
    assert [(r.name, r.target, r.relationship) for r in web.requirements] == [
        ("connection", "db", "tosca.relationships.ConnectsTo"),
        ("secret", "db_password", "agora.relationships.UsesSecret"),
    ]
    volume = db.requirements[0]
    assert (volume.target, volume.relationship) == ("db_data", "agora.relationships.MountsVolume")
    assert volume.properties == {"location": "/var/lib/postgresql/data"}
    assert web.line == 29

    scripts = validate_bytes(zip_folder(CORPUS / "csar" / "compute_scripts"), filename="c.csar").template
    assert scripts is not None
    server = scripts.node("web_server")
    assert server is not None
    assert [(o.interface, o.name, o.implementation, o.dependencies) for o in server.operations] == [
        ("Standard", "create", "scripts/apache_install.sh", ("scripts/apache.conf",)),
        ("Standard", "start", "scripts/apache_start.sh", ()),
    ]
    docker = validate_path(CORPUS / "single" / "docker_app_1_3.yaml").template
    assert docker is not None
    image = docker.nodes[0].artifacts[0]
    assert (image.name, image.type, image.file) == (
        "image",
        "tosca.artifacts.Deployment.Image.Container.Docker",
        "nginx:1.25",
    )


def test_to_dict_is_json_and_carries_no_property_values() -> None:
    text = PROFILE_TEMPLATE.replace(
        "        image: nginx:1.25\n", "        image: nginx:1.25\n        environment:\n          API_KEY: hunter2\n"
    ).replace(
        "topology_template:\n",
        "topology_template:\n  inputs:\n    since:\n      type: timestamp\n      default: 2024-01-02\n",
    )
    report = validate(text)
    payload = report.to_dict()
    assert set(payload) == {"valid", "deployable", "problems", "inputs", "metadata", "nodes", "outputs"}
    encoded = json.dumps(payload)
    assert "hunter2" not in encoded
    assert payload["inputs"]["since"]["default"] == "2024-01-02"
    assert payload["nodes"][0]["properties"] == ["cpu_limit", "environment", "image", "mem_limit", "replicas"]


def test_nodes_carry_their_types_property_defaults_under_their_own_values() -> None:
    text = PROFILE_TEMPLATE.replace("        image: nginx:1.25\n", "        image: nginx:1.25\n        replicas: 3\n")
    template = validate(text).template
    assert template is not None
    web = template.nodes[0]
    assert web.properties["replicas"] == 3
    assert web.properties["cpu_limit"] == 0.5 and web.properties["mem_limit"] == "256 MB"


def test_problems_list_errors_first_then_tosca_support_policy() -> None:
    report = validate_path(CORPUS / "single" / "unknown_property.yaml")
    kinds = [(p.severity, p.kind) for p in report.problems]
    assert kinds == sorted(
        kinds, key=lambda k: ({"error": 0, "warning": 1}[k[0]], ["tosca", "support", "policy"].index(k[1]))
    )
    assert report.problems[0].to_dict() == {
        "severity": "error",
        "kind": "tosca",
        "message": report.problems[0].message,
        "file": "tests/data/tosca/single/unknown_property.yaml".replace("tests/data/tosca", str(CORPUS)),
        "line": 9,
        "node": "web",
        "property": "imagee",
    }


def test_the_catalogues_docker_template_is_valid_and_deployable() -> None:
    from tests.conftest import DOCKER_TEMPLATE, INVALID_TEMPLATE

    good = validate(DOCKER_TEMPLATE)
    assert good.valid and good.deployable, good.problems
    bad = validate(INVALID_TEMPLATE)
    assert not bad.valid and bad.problems[0].kind is ProblemKind.TOSCA


@pytest.mark.parametrize(
    ("text", "words", "line", "node", "prop"),
    [
        ("topology_template: {}\n", "has no tosca_definitions_version", 1, None, None),
        (
            "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n"
            "    db:\n      type: tosca.nodes.BlockStorage\n",
            "is missing the required property size (required by tosca.nodes.BlockStorage)",
            4,
            "db",
            "size",
        ),
        (
            "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n"
            "    web:\n      properties: {}\n",
            'Node template "web" has no type',
            4,
            "web",
            None,
        ),
        (
            "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n"
            "    app:\n      type: tosca.nodes.SoftwareComponent\n      requirements:\n        - hots: srv\n"
            "        - host: srv\n    srv:\n      type: tosca.nodes.Compute\n",
            'has a requirement "hots" that tosca.nodes.SoftwareComponent does not define (it defines: host, '
            "dependency)",
            7,
            "app",
            None,
        ),
        (
            "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n"
            "    srv:\n      type: tosca.nodes.Compute\n      colour: blue\n",
            'Node template "srv" has an unknown key "colour"',
            6,
            "srv",
            None,
        ),
        (
            "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  inputs:\n"
            "    n:\n      type: integer\n      default: many\n  node_templates: {}\n",
            'Input "n": the default value "many" is not an integer',
            6,
            None,
            None,
        ),
        (
            "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  inputs:\n"
            "    n:\n      type: strng\n",
            'Input "n" has the type "strng", which is not a TOSCA input type',
            5,
            None,
            None,
        ),
        (
            "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n"
            "    srv:\n      type: tosca.nodes.Compute\n      capabilities:\n        host:\n"
            "          properties:\n            num_cpus: 0\n",
            'Property "num_cpus" of node template "srv": the value 0 must be greater than or equal to 1',
            9,
            "srv",
            "num_cpus",
        ),
        (
            "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  outputs:\n    url: {}\n",
            'Output "url" has no value',
            4,
            None,
            None,
        ),
        (
            "tosca_definitions_version: tosca_simple_yaml_1_3\nnode_types:\n  a.A:\n    derived_from: a.Missing\n"
            "topology_template:\n  node_templates:\n    x:\n      type: a.A\n",
            'The type "a.Missing" is not defined',
            4,
            None,
            None,
        ),
        (
            "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n"
            "    app:\n      type: tosca.nodes.SoftwareComponent\n      requirements:\n"
            "        - host: tosca.nodes.Compute\n",
            "names the type tosca.nodes.Compute as a requirement target",
            7,
            "app",
            None,
        ),
        (
            "tosca_definitions_version: tosca_simple_yaml_1_3\ntemplate_nam: x\ntopology_template: {}\n",
            'unknown top-level section "template_nam"',
            2,
            None,
            None,
        ),
    ],
)
def test_parser_findings_become_sentences_with_their_place(
    text: str, words: str, line: int, node: str | None, prop: str | None
) -> None:
    report = validate(text)
    problem = find(report, words)
    assert (problem.kind, problem.line, problem.node, problem.property) == (ProblemKind.TOSCA, line, node, prop)
    assert "Refer to the definition" not in problem.message
    assert not report.valid


def test_input_metadata_is_accepted_from_tosca_1_2() -> None:
    text = (
        "tosca_definitions_version: tosca_simple_yaml_1_2\ntopology_template:\n  inputs:\n    pw:\n"
        "      type: string\n      metadata:\n        secret: 'true'\n  node_templates:\n"
        "    srv:\n      type: tosca.nodes.Compute\n"
    )
    report = validate(text)
    assert report.valid, report.problems
    assert report.inputs_schema()["pw"]["secret"] is True


def test_a_type_deriving_from_itself_is_reported_without_running_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checker, "ToscaTemplate", None)  # would fail if called
    text = (
        "tosca_definitions_version: tosca_simple_yaml_1_3\nnode_types:\n  a.A:\n    derived_from: a.B\n"
        "  a.B:\n    derived_from: a.A\ntopology_template:\n  node_templates:\n    x:\n      type: a.A\n"
    )
    report = validate(text)
    problem = find(report, "derive from each other in a circle: a.A → a.B → a.A")
    assert problem.line == 3
    assert not report.valid


def test_a_crash_of_the_parser_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(**kwargs: Any) -> None:
        raise TypeError("'NoneType' object is not subscriptable")

    monkeypatch.setattr(checker, "ToscaTemplate", crash)
    report = validate(PROFILE_TEMPLATE)
    problem = find(report, "The TOSCA parser could not check this template")
    assert problem.kind is ProblemKind.TOSCA
    assert not report.valid


def test_the_parsers_global_state_is_restored_after_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    from toscaparser.common.exception import ExceptionCollector

    def crash(**kwargs: Any) -> None:
        raise RecursionError

    before = ExceptionCollector.__dict__["appendException"]
    monkeypatch.setattr(checker, "ToscaTemplate", crash)
    validate(PROFILE_TEMPLATE)
    assert ExceptionCollector.__dict__["appendException"] is before
    assert not ExceptionCollector.collecting


def test_an_nfv_template_does_not_leave_its_types_behind() -> None:
    before = set(EntityType.TOSCA_DEF)
    report = validate_path(CORPUS / "single" / "nfv_profile.yaml")
    assert report.valid and not report.deployable
    assert set(EntityType.TOSCA_DEF) == before


def test_too_many_node_templates_are_refused_before_parsing() -> None:
    nodes = "".join(f"    n{i}:\n      type: tosca.nodes.Compute\n" for i in range(11))
    text = f"tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n{nodes}"
    report = validate_bytes(text.encode(), filename="t.yaml", limits=Limits(max_node_templates=10))
    assert find(report, "11 node templates; Agora accepts at most 10").kind is ProblemKind.POLICY
    assert report.template is None and not report.valid


def test_a_flood_of_parser_findings_is_cut_short_quickly() -> None:
    props = "".join(f"        p{i}: 1\n" for i in range(20_000))
    text = (
        "tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n"
        f"    srv:\n      type: tosca.nodes.Compute\n      properties:\n{props}"
    )
    start = time.monotonic()
    report = validate(text)
    assert time.monotonic() - start < 5
    assert len(report.problems) <= checker.MAX_FINDINGS + 5
    assert find(report, "found more problems than are listed here").severity is Severity.WARNING


def test_content_decides_between_yaml_and_csar(private_tmp: Path) -> None:
    as_zip = validate_bytes(zip_folder(CORPUS / "csar" / "docker_app"), filename="service.yaml")
    assert as_zip.valid and as_zip.deployable
    named_zip = validate_bytes(PROFILE_TEMPLATE.encode(), filename="service.csar")
    assert find(named_zip, "named like a CSAR but is not a zip archive")
    assert not named_zip.valid


def test_validation_is_thread_safe() -> None:
    files = sorted((CORPUS / "single").glob("*.yaml"))
    datas = [(f.name, f.read_bytes()) for f in files]

    def run(item: tuple[str, bytes]) -> dict[str, Any]:
        return validate_bytes(item[1], filename=item[0]).to_dict()

    expected = [run(d) for d in datas]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            assert list(pool.map(run, datas)) == expected


WEIRD_VALUES: list[Any] = [
    None,
    0,
    -1,
    1.5,
    True,
    "",
    "x",
    [],
    {},
    [None],
    {"a": None},
    [[]],
    {"get_input": "nope"},
    {"get_input": []},
    {"get_attribute": [1]},
    "tosca.nodes.Compute",
    ["host"],
    {"host": None},
    {"node": []},
    {"type": 5},
]


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


def test_mis_shaped_templates_never_raise() -> None:
    """Seeded mutations of the corpus: a value somewhere replaced by one of the wrong shape."""
    import copy
    import random

    import yaml

    rng = random.Random(20261124)  # noqa: S311  # a seeded, repeatable fuzz
    sources = [CORPUS / "single" / n for n in ("agora_web.yaml", "docker_app_1_2.yaml", "policy_host_access.yaml")]
    sources.append(CORPUS / "csar" / "compute_scripts" / "service.yaml")
    originals = [yaml.safe_load(p.read_text()) for p in sources]
    for _ in range(300):
        data = copy.deepcopy(rng.choice(originals))
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(_paths(data))
            target = data
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = copy.deepcopy(rng.choice(WEIRD_VALUES))
        report = validate(yaml.safe_dump(data))
        json.dumps(report.to_dict())


def test_paths_in_a_containers_environment_and_command_are_not_mistaken_for_host_mounts() -> None:
    text = PROFILE_TEMPLATE.replace(
        "        image: nginx:1.25\n",
        "        image: nginx:1.25\n"
        "        environment:\n"
        "          PATH: /usr/local/bin:/usr/bin:/bin\n"
        "        command: [sh, -c, 'ls /etc:/var']\n",
    )
    report = validate(text)
    assert report.deployable, [p.message for p in report.problems]
