"""Validate a TOSCA template: an uploaded file (web, API) or a file on disk (CLI).

The order matters: read the bytes within limits, extract a CSAR into a
temporary folder, load every YAML with the bounded loader, check every import,
and only then give tosca-parser the checked data. Agora's own checks (files,
support, policy) follow. Nothing here raises for bad input: every finding is a
Problem in the Report.
"""

from __future__ import annotations

import io
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from orchestrator.tosca.build import build_template
from orchestrator.tosca.checker import run_toscaparser
from orchestrator.tosca.csar import TOSCA_META, Archive, ArchiveError, extract_csar, is_zip
from orchestrator.tosca.files import check_artifact_files
from orchestrator.tosca.messages import Locator, problems_from
from orchestrator.tosca.model import Limits, Problem, ProblemKind, Report, Severity
from orchestrator.tosca.policy import check_policy
from orchestrator.tosca.registry import TypeRegistry
from orchestrator.tosca.safe_yaml import YamlError, load_yaml, read_limited
from orchestrator.tosca.sources import Scope, Sources, load_sources
from orchestrator.tosca.support import check_support

DEFAULT_LIMITS = Limits()  # frozen, so one shared default is safe
_CSAR_SUFFIXES = (".zip", ".csar")
_INPUT_METADATA_VERSIONS = ("tosca_simple_yaml_1_2", "tosca_simple_yaml_1_3")


def validate_bytes(data: bytes, *, filename: str, limits: Limits = DEFAULT_LIMITS) -> Report:
    """An uploaded file: a CSAR when its content is a zip, else a single YAML that may import only Agora's profile."""
    name = filename or "template.yaml"
    if len(data) > limits.max_bytes:
        return _refused(ProblemKind.POLICY, limits.too_large(len(data)), None)
    if is_zip(data):
        return _validate_csar(io.BytesIO(data), len(data), limits)
    if name.lower().endswith(_CSAR_SUFFIXES):
        return _refused(
            ProblemKind.TOSCA, f"{name} is named like a CSAR but is not a zip archive; upload the zip file.", None
        )
    return _validate_yaml(data, Scope("upload", main_name=name), limits)


def validate_path(path: Path, *, root: Path | None = None, limits: Limits = DEFAULT_LIMITS) -> Report:
    """A file on disk: a CSAR, or a YAML whose relative imports may be read only from under `root`
    (default: the template's own folder)."""
    name = str(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return _refused(ProblemKind.TOSCA, f"{name} is not a file.", None)
        if info.st_size > limits.max_bytes:
            return _refused(ProblemKind.POLICY, limits.too_large(info.st_size), None)
        data = read_limited(path, limits)
    except OSError as exc:
        return _refused(ProblemKind.TOSCA, f"{name} cannot be read ({exc.strerror or exc}).", None)
    if len(data) > limits.max_bytes:  # it grew since stat
        return _refused(ProblemKind.POLICY, limits.too_large(len(data)), None)
    if is_zip(data):
        return _validate_csar(io.BytesIO(data), len(data), limits)
    main_path = path.resolve()
    scope = Scope("folder", root=root.resolve() if root else main_path.parent, main_name=name, main_path=main_path)
    return _validate_yaml(data, scope, limits)


def _validate_csar(source: BinaryIO, size: int, limits: Limits) -> Report:
    # The extraction folder lives only as long as this call, whatever happens in it.
    with tempfile.TemporaryDirectory(prefix="agora-csar-") as tmp:
        root = Path(tmp).resolve()
        try:
            archive = extract_csar(source, size, root, limits)
        except ArchiveError as exc:
            return _refused(exc.kind, exc.message, exc.member)
        main_path = root / archive.entry
        try:
            data = read_limited(main_path, limits)
        except OSError as exc:
            return _refused(ProblemKind.TOSCA, f"{archive.entry} cannot be read ({exc.strerror}).", archive.entry)
        scope = Scope("archive", root=root, main_name=archive.entry, main_path=main_path)
        return _validate_yaml(data, scope, limits, archive)


def _validate_yaml(data: bytes, scope: Scope, limits: Limits, archive: Archive | None = None) -> Report:
    try:
        document = load_yaml(data, limits=limits)
    except YamlError as exc:
        kind = ProblemKind.POLICY if exc.limit else ProblemKind.TOSCA
        return _refused(kind, exc.message, scope.main_name, exc.line)
    problems: list[Problem] = [
        Problem(Severity.WARNING, ProblemKind.TOSCA, w.message, scope.main_name, w.line, None)
        for w in document.warnings
    ]
    topology = document.data.get("topology_template")
    nodes = topology.get("node_templates") if isinstance(topology, dict) else None
    if isinstance(nodes, dict) and len(nodes) > limits.max_node_templates:
        return _refused(
            ProblemKind.POLICY,
            f"The template has {len(nodes)} node templates; Agora accepts at most {limits.max_node_templates}.",
            scope.main_name,
            document.line("topology_template", "node_templates"),
        )
    sources = load_sources(document, scope, limits)
    problems.extend(sources.problems)
    registry = _registry(sources)
    version = document.data.get("tosca_definitions_version")
    if archive is not None and not archive.has_meta and version == "tosca_simple_yaml_1_0":
        problems.append(
            Problem(
                Severity.ERROR,
                ProblemKind.TOSCA,
                f"A CSAR of tosca_simple_yaml_1_0 needs {TOSCA_META} naming its Entry-Definitions; add it, or "
                "declare tosca_simple_yaml_1_2 or later.",
                None,
                None,
                None,
            )
        )
    cycles = registry.cycles()
    for cycle in cycles:
        file = registry.defined_in(cycle.chain[0])
        line = next((f.document.line(cycle.section, cycle.chain[0]) for f in sources.files() if f.name == file), None)
        problems.append(
            Problem(
                Severity.ERROR,
                ProblemKind.TOSCA,
                "The types derive from each other in a circle: " + " → ".join(cycle.chain) + ". Fix a derived_from.",
                file,
                line,
                None,
            )
        )
    if not cycles:  # the parser would recurse until it fails, or loop
        result = run_toscaparser(_for_parser(sources.main.data), {k: f.data for k, f in sources.imported.items()})
        problems.extend(problems_from(result, Locator(sources, registry)))
    template = build_template(document, registry, scope.main_name)
    problems.extend(check_artifact_files(template, registry, scope, document))
    problems.extend(check_support(template, sources, registry))
    problems.extend(check_policy(template, line_of=document.line))
    return Report.from_problems(problems, template)


def _registry(sources: Sources) -> TypeRegistry:
    registry = TypeRegistry()
    for file in sources.imported.values():
        registry.add_file(file.data, file.name, file.namespace_prefix)
    registry.add_file(sources.main.data, sources.main.name)  # the template's own types win, as in the parser
    return registry


def _for_parser(data: dict[Any, Any]) -> dict[Any, Any]:
    """TOSCA 1.2 and 1.3 allow metadata on inputs (Agora reads `secret: true` there); tosca-parser 2.15 does not."""
    if data.get("tosca_definitions_version") not in _INPUT_METADATA_VERSIONS:
        return data
    topology = data.get("topology_template")
    inputs = topology.get("inputs") if isinstance(topology, dict) else None
    if not isinstance(inputs, dict) or not any(isinstance(s, dict) and "metadata" in s for s in inputs.values()):
        return data
    stripped = {
        name: {k: v for k, v in spec.items() if k != "metadata"} if isinstance(spec, dict) else spec
        for name, spec in inputs.items()
    }
    assert isinstance(topology, dict)
    return {**data, "topology_template": {**topology, "inputs": stripped}}


def _refused(kind: ProblemKind, message: str, file: str | None, line: int | None = None) -> Report:
    """The file could not be read as a template at all: no verdict, so neither valid nor deployable."""
    return Report.from_problems([Problem(Severity.ERROR, kind, message, file, line, None)], None)
