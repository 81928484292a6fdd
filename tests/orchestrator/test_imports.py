from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from orchestrator.tosca import AGORA_PROFILE_IMPORT, ProblemKind, Report, validate_bytes, validate_path
from tests.orchestrator.conftest import PROFILE_TEMPLATE, make_zip

TYPES = """\
tosca_definitions_version: tosca_simple_yaml_1_3
imports:
  - agora/v1/profile.yaml
node_types:
  example.nodes.Web:
    derived_from: agora.nodes.Container
"""


def uses(type_name: str, imports: list[str] | str) -> str:
    listing = imports if isinstance(imports, str) else "\n".join(f"  - {i}" for i in imports)
    return f"""\
tosca_definitions_version: tosca_simple_yaml_1_3
imports:
{listing}
topology_template:
  node_templates:
    web:
      type: {type_name}
      properties:
        image: nginx:1.25
"""


def messages(report: Report) -> list[str]:
    return [p.message for p in report.problems]


def the_problem(report: Report, words: str) -> Any:
    found = [p for p in report.problems if words in p.message]
    assert found, messages(report)
    return found[0]


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_an_upload_may_import_agoras_profile() -> None:
    report = validate_bytes(PROFILE_TEMPLATE.encode(), filename="t.yaml")
    assert report.valid and report.deployable, messages(report)
    assert AGORA_PROFILE_IMPORT == "agora/v1/profile.yaml"


def test_an_upload_may_import_nothing_else() -> None:
    report = validate_bytes(uses("example.nodes.Web", ["types.yaml"]).encode(), filename="t.yaml")
    problem = the_problem(report, "an uploaded single YAML can import only Agora's profile")
    assert problem.kind is ProblemKind.TOSCA
    assert problem.line == 3
    assert "Upload a CSAR" in problem.message
    assert not report.valid


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any attempt to reach the network is recorded and fails."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return attempts


@pytest.mark.parametrize(
    "url",
    [
        "http://10.255.255.1/types.yaml",
        "https://types.example.org/web.yaml",
        "ftp://example.org/t.yaml",
        "file:///etc/passwd",
        "file:/etc/passwd",
        "data:text/plain,node_types",
    ],
)
def test_an_import_by_url_fails_at_once_without_touching_the_network(no_network: list[str], url: str) -> None:
    start = time.monotonic()
    report = validate_bytes(uses("example.nodes.Web", [url]).encode(), filename="t.yaml")
    assert time.monotonic() - start < 0.5
    assert no_network == []
    problem = the_problem(report, "is a URL: Agora never fetches templates")
    assert problem.kind is ProblemKind.POLICY
    assert problem.line == 3


def test_an_import_from_a_repository_is_a_url_too(no_network: list[str]) -> None:
    text = uses(
        "example.nodes.Web",
        "  - web:\n      file: web.yaml\n      repository: remote\nrepositories:\n  remote: http://example.org/",
    )
    report = validate_bytes(text.encode(), filename="t.yaml")
    assert the_problem(report, "comes from repository 'remote'").kind is ProblemKind.POLICY
    assert no_network == []


def test_an_absolute_import_is_refused_before_any_file_is_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text(TYPES)
    report = validate_bytes(uses("example.nodes.Web", [str(secret)]).encode(), filename="t.yaml")
    assert the_problem(report, "is an absolute path").kind is ProblemKind.POLICY
    assert not report.valid  # example.nodes.Web stays unknown: the file was never read


def test_relative_imports_on_disk_resolve_from_the_importing_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "main.yaml": uses("example.nodes.Site", ["types/site.yaml"]),
            "types/site.yaml": (
                "tosca_definitions_version: tosca_simple_yaml_1_3\nimports:\n  - web.yaml\nnode_types:\n"
                "  example.nodes.Site:\n    derived_from: example.nodes.Web\n"
            ),
            "types/web.yaml": TYPES,
        },
    )
    report = validate_path(tmp_path / "main.yaml")
    assert report.valid and report.deployable, messages(report)
    assert report.template is not None
    assert report.template.nodes[0].types[:3] == ("example.nodes.Site", "example.nodes.Web", "agora.nodes.Container")


def test_the_working_directory_never_shadows_an_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # tosca-parser would look for a nested relative import in the working directory first.
    write(
        tmp_path,
        {
            "project/main.yaml": uses("example.nodes.Web", ["types/outer.yaml"]),
            "project/types/outer.yaml": "tosca_definitions_version: tosca_simple_yaml_1_3\nimports:\n  - web.yaml\n",
            "project/types/web.yaml": TYPES,
            "cwd/web.yaml": "tosca_definitions_version: tosca_simple_yaml_1_3\nnode_types:\n  decoy.Type: {}\n",
        },
    )
    monkeypatch.chdir(tmp_path / "cwd")
    report = validate_path(tmp_path / "project" / "main.yaml")
    assert report.valid and report.deployable, messages(report)


def test_an_import_outside_the_folder_is_refused_unless_root_widens_it(tmp_path: Path) -> None:
    write(tmp_path, {"shared/web.yaml": TYPES, "app/main.yaml": uses("example.nodes.Web", ["../shared/web.yaml"])})
    refused = validate_path(tmp_path / "app" / "main.yaml")
    problem = the_problem(refused, "points outside the folder")
    assert problem.kind is ProblemKind.POLICY
    assert "--root" in problem.message
    widened = validate_path(tmp_path / "app" / "main.yaml", root=tmp_path)
    assert widened.valid and widened.deployable, messages(widened)


def test_a_symlink_cannot_lead_an_import_outside_the_folder(tmp_path: Path) -> None:
    write(tmp_path, {"outside/web.yaml": TYPES, "app/main.yaml": uses("example.nodes.Web", ["link.yaml"])})
    (tmp_path / "app" / "link.yaml").symlink_to(tmp_path / "outside" / "web.yaml")
    report = validate_path(tmp_path / "app" / "main.yaml")
    assert the_problem(report, "points outside the folder").kind is ProblemKind.POLICY


def test_a_missing_import_is_a_tosca_problem(tmp_path: Path) -> None:
    write(tmp_path, {"main.yaml": uses("example.nodes.Web", ["nowhere.yaml"])})
    report = validate_path(tmp_path / "main.yaml")
    problem = the_problem(report, "cannot be found in the folder")
    assert problem.kind is ProblemKind.TOSCA


def test_circular_imports_are_reported_not_recursed(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "main.yaml": uses("example.nodes.Web", ["a.yaml"]),
            "a.yaml": "tosca_definitions_version: tosca_simple_yaml_1_3\nimports:\n  - b.yaml\n",
            "b.yaml": "tosca_definitions_version: tosca_simple_yaml_1_3\nimports:\n  - a.yaml\n  - web.yaml\n",
            "web.yaml": TYPES,
        },
    )
    report = validate_path(tmp_path / "main.yaml")
    problem = the_problem(report, "go round in a circle")
    assert "a.yaml → " in problem.message and problem.file.endswith("b.yaml")
    assert problem.line == 3
    assert problem.kind is ProblemKind.TOSCA
    assert not report.valid


def test_a_template_importing_itself_is_a_circle(tmp_path: Path) -> None:
    write(tmp_path, {"main.yaml": uses("tosca.nodes.Compute", ["main.yaml"])})
    report = validate_path(tmp_path / "main.yaml")
    assert the_problem(report, "go round in a circle")


def test_a_file_imported_twice_is_fine(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "main.yaml": uses("example.nodes.Web", ["a.yaml", "b.yaml"]),
            "a.yaml": "tosca_definitions_version: tosca_simple_yaml_1_3\nimports:\n  - web.yaml\n",
            "b.yaml": "tosca_definitions_version: tosca_simple_yaml_1_3\nimports:\n  - web.yaml\n",
            "web.yaml": TYPES,
        },
    )
    report = validate_path(tmp_path / "main.yaml")
    assert report.valid and report.deployable, messages(report)


def test_namespace_prefixes_of_imports_are_honoured(tmp_path: Path) -> None:
    text = uses("ex.example.nodes.Web", "  - types:\n      file: web.yaml\n      namespace_prefix: ex")
    write(tmp_path, {"main.yaml": text, "web.yaml": TYPES})
    report = validate_path(tmp_path / "main.yaml")
    assert report.valid and report.deployable, messages(report)


def test_imports_must_be_a_list() -> None:
    text = PROFILE_TEMPLATE.replace("imports:\n  - agora/v1/profile.yaml", "imports: agora/v1/profile.yaml")
    report = validate_bytes(text.encode(), filename="t.yaml")
    assert the_problem(report, "imports must be a list").kind is ProblemKind.TOSCA


def test_a_malformed_imported_file_is_reported_with_its_name_and_line(tmp_path: Path) -> None:
    write(tmp_path, {"main.yaml": uses("example.nodes.Web", ["web.yaml"]), "web.yaml": "a: [1\nb: 2\n"})
    report = validate_path(tmp_path / "main.yaml")
    problem = the_problem(report, "malformed")
    assert problem.file.endswith("web.yaml")
    assert problem.line is not None


def test_an_imported_file_is_read_with_the_same_limits(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh", strict=True)
    )
    write(tmp_path, {"main.yaml": uses("example.nodes.Web", ["web.yaml"]), "web.yaml": bomb})
    report = validate_path(tmp_path / "main.yaml")
    problem = the_problem(report, "once aliases are expanded")
    assert problem.kind is ProblemKind.POLICY
    assert problem.file.endswith("web.yaml")


def test_imports_inside_a_csar_resolve_inside_it(private_tmp: Path) -> None:
    data = make_zip(
        {
            "service.yaml": uses("example.nodes.Web", ["types/web.yaml"]),
            "types/web.yaml": TYPES,
        }
    )
    report = validate_bytes(data, filename="service.csar")
    assert report.valid and report.deployable, messages(report)


def test_an_import_escaping_a_csar_is_refused(private_tmp: Path) -> None:
    (private_tmp.parent / "outside.yaml").write_text(TYPES)
    data = make_zip({"service.yaml": uses("example.nodes.Web", ["../outside.yaml"])})
    report = validate_bytes(data, filename="service.csar")
    problem = the_problem(report, "points outside the archive")
    assert problem.kind is ProblemKind.POLICY
    assert problem.file == "service.yaml"


def test_a_template_and_its_imports_share_the_limit_on_yaml_values(tmp_path: Path) -> None:
    from orchestrator.tosca import Limits

    pad = "metadata:\n  pad: [" + ", ".join(["x"] * 60) + "]\n"
    files = {f"t{i}.yaml": "tosca_definitions_version: tosca_simple_yaml_1_3\n" + pad for i in range(5)}
    files["main.yaml"] = uses("tosca.nodes.Compute", [f"t{i}.yaml" for i in range(5)])
    write(tmp_path, files)
    report = validate_path(tmp_path / "main.yaml", limits=Limits(max_yaml_nodes=150))
    problems = [p for p in report.problems if "and the files it imports hold more than 150" in p.message]
    assert len(problems) == 1  # said once; the later imports are not read at all
    assert problems[0].kind is ProblemKind.POLICY


def test_a_template_and_its_imports_share_the_limit_on_bytes(tmp_path: Path) -> None:
    from orchestrator.tosca import Limits

    big = "tosca_definitions_version: tosca_simple_yaml_1_3\n" + "# padding\n" * 500
    write(tmp_path, {"main.yaml": uses("tosca.nodes.Compute", ["a.yaml", "b.yaml"]), "a.yaml": big, "b.yaml": big})
    report = validate_path(tmp_path / "main.yaml", limits=Limits(max_uncompressed_bytes=8000))
    assert the_problem(report, "larger than 7.8 KiB together").kind is ProblemKind.POLICY
