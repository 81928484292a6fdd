from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.orchestrator.conftest import CORPUS, zip_folder

GOOD = CORPUS / "single" / "docker_app_1_3.yaml"
BAD = CORPUS / "single" / "unknown_property.yaml"
UNDEPLOYABLE = CORPUS / "single" / "network_nodes.yaml"


def run(*args: str) -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("tosca", *args, stdout=out, no_color=True)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def test_a_valid_deployable_template_prints_its_summary_and_succeeds() -> None:
    out, error = run("validate", str(GOOD))
    assert error is None
    assert out.splitlines() == [f"{GOOD}: valid, deployable"]


def test_each_problem_is_printed_as_path_line_severity_message() -> None:
    out, error = run("validate", str(BAD))
    lines = out.splitlines()
    assert lines[0].startswith(f'{BAD}:9: error: Node template "web" has a property "imagee"')
    assert lines[-1] == f"{BAD}: not valid"
    assert error is not None and error.returncode == 1


def test_a_problem_without_a_line_has_no_line_number(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    out, error = run("validate", str(path))
    assert (
        out.splitlines()[0]
        == f"{path}: error: The file is empty; a TOSCA template starts with tosca_definitions_version."
    )
    assert error is not None


def test_a_valid_but_undeployable_template_fails_the_command() -> None:
    out, error = run("validate", str(UNDEPLOYABLE))
    assert out.splitlines()[-1] == f"{UNDEPLOYABLE}: valid, not deployable"
    assert error is not None and "1 of 1 templates is not valid or not deployable" in str(error)


def test_json_prints_one_object_per_file_per_line() -> None:
    out, error = run("validate", "--json", str(GOOD), str(BAD))
    good, bad = (json.loads(line) for line in out.splitlines())
    assert good == {
        "path": str(GOOD),
        "valid": True,
        "deployable": True,
        "problems": [],
        "inputs": {
            "greeting": {
                "type": "string",
                "description": "What the page says.",
                "default": "Hello",
                "has_default": True,
                "constraints": [],
                "required": True,
                "secret": False,
            }
        },
    }
    assert bad["valid"] is False
    assert {"severity", "kind", "message", "line", "node"} <= set(bad["problems"][0])
    assert bad["problems"][0]["line"] == 9
    assert error is not None and "1 of 2" in str(error)


def test_root_widens_where_imports_are_read(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "app").mkdir()
    (tmp_path / "shared" / "types.yaml").write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_3\nimports:\n  - agora/v1/profile.yaml\n"
    )
    main = tmp_path / "app" / "main.yaml"
    main.write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_3\nimports:\n  - ../shared/types.yaml\n"
        "topology_template:\n  node_templates:\n    web:\n      type: agora.nodes.Container\n"
        "      properties:\n        image: nginx:1.25\n"
    )
    out, error = run("validate", str(main))
    assert "points outside the folder" in out and error is not None
    out, error = run("validate", "--root", str(tmp_path), str(main))
    assert error is None, out


def test_problems_inside_a_csar_name_the_member(tmp_path: Path) -> None:
    path = tmp_path / "service.csar"
    path.write_bytes(zip_folder(CORPUS / "csar" / "missing_script"))
    out, error = run("validate", str(path))
    assert out.splitlines()[0].startswith(f"{path}/service.yaml:10: error: ")
    assert error is not None


def test_problems_in_an_imported_file_name_that_file(tmp_path: Path) -> None:
    (tmp_path / "types.yaml").write_text("a: [1\n")
    main = tmp_path / "main.yaml"
    main.write_text("tosca_definitions_version: tosca_simple_yaml_1_3\nimports:\n  - types.yaml\n")
    out, _ = run("validate", str(main))
    assert out.splitlines()[0].startswith(f"{tmp_path / 'types.yaml'}:")


def test_an_action_is_required() -> None:
    with pytest.raises(CommandError, match="ACTION"):
        call_command("tosca")
