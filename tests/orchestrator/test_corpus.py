"""The corpus of real templates in tests/data/tosca, with the verdicts in expected.json."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from toscaparser.elements.entity_type import EntityType
from toscaparser.tosca_template import ToscaTemplate

from orchestrator.tosca import AGORA_PROFILE_IMPORT, PROFILE_PATH, checker
from tests.orchestrator.conftest import CORPUS, zip_folder

EXPECTED: dict[str, dict[str, Any]] = {
    k: v for k, v in json.loads((CORPUS / "expected.json").read_text()).items() if not k.startswith("_")
}


def corpus_file(key: str, tmp_path: Path) -> Path:
    """The file to validate: a single YAML as it is, a csar/ folder zipped."""
    source = CORPUS / key
    if source.is_dir():
        path = tmp_path / f"{source.name}.csar"
        path.write_bytes(zip_folder(source))
        return path
    return source


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_each_corpus_template_gets_its_expected_verdict(key: str, tmp_path: Path, private_tmp: Path) -> None:
    expected = EXPECTED[key]
    path = corpus_file(key, tmp_path)
    out = io.StringIO()
    failed = False
    try:
        call_command("tosca", "validate", "--json", str(path), stdout=out)
    except CommandError:
        failed = True
    answer = json.loads(out.getvalue())
    assert (answer["valid"], answer["deployable"]) == (expected["valid"], expected["deployable"]), answer["problems"]
    assert failed is not (expected["valid"] and expected["deployable"])
    if expected["problem"] is None:
        assert answer["problems"] == []
        return
    matching = [p for p in answer["problems"] if expected["problem"] in p["message"]]
    assert matching, [p["message"] for p in answer["problems"]]
    assert (matching[0]["kind"], matching[0]["line"]) == (expected["kind"], expected["line"])


def test_every_corpus_template_has_an_expected_verdict() -> None:
    entries = {p.relative_to(CORPUS).as_posix() for p in (CORPUS / "single").glob("*.yaml")}
    entries |= {p.relative_to(CORPUS).as_posix() for p in (CORPUS / "single" / "with_imports").glob("*.yaml")}
    entries |= {p.relative_to(CORPUS).as_posix() for p in (CORPUS / "csar").iterdir() if p.is_dir()}
    assert entries == set(EXPECTED)


def test_the_corpus_covers_every_version_and_kind_of_verdict() -> None:
    versions = set()
    for path in CORPUS.rglob("*.y*ml"):
        for line in path.read_text().splitlines():
            if line.startswith("tosca_definitions_version:"):
                versions.add(line.split(":", 1)[1].strip())
    assert {
        "tosca_simple_yaml_1_0",
        "tosca_simple_yaml_1_1",
        "tosca_simple_yaml_1_2",
        "tosca_simple_yaml_1_3",
    } <= versions
    kinds = {e.get("kind") for e in EXPECTED.values()}
    assert {"tosca", "support", "policy"} <= kinds


def _copy_with_profile(source: Path, dest: Path) -> Path:
    """A copy of the template's folder where the profile import names the shipped file, as tosca-parser needs."""
    folder = source if source.is_dir() else source.parent
    shutil.copytree(folder, dest)
    for path in dest.rglob("*.y*ml"):
        path.write_text(path.read_text().replace(AGORA_PROFILE_IMPORT, str(PROFILE_PATH)))
    return dest if source.is_dir() else dest / source.name


def _entry(folder: Path) -> Path:
    meta = folder / "TOSCA-Metadata" / "TOSCA.meta"
    if meta.exists():
        for line in meta.read_text().splitlines():
            if line.startswith("Entry-Definitions:"):
                return folder / line.split(":", 1)[1].strip()
    return next(p for p in sorted(folder.iterdir()) if p.suffix in (".yaml", ".yml"))


def toscaparser_verdict(key: str, mode: str, tmp_path: Path) -> bool:
    """tosca-parser's own verdict: ToscaTemplate raising or not."""
    copy = _copy_with_profile(CORPUS / key, tmp_path / "copy")
    if mode == "csar":
        target = tmp_path / "service.zip"
        target.write_bytes(zip_folder(copy))
    else:
        target = _entry(copy) if copy.is_dir() else copy
    saved = dict(EntityType.TOSCA_DEF)
    with checker._LOCK:  # the parser's global state is shared with Agora's own calls
        try:
            ToscaTemplate(str(target))
            return True
        except Exception:
            return False
        finally:
            EntityType.TOSCA_DEF.clear()
            EntityType.TOSCA_DEF.update(saved)


JUDGED = sorted(k for k, v in EXPECTED.items() if v["parser"] in ("yaml", "csar"))
DIFFERING = sorted(k for k, v in EXPECTED.items() if v["parser"].startswith("differs:"))


@pytest.mark.parametrize("key", JUDGED)
def test_agoras_valid_verdict_agrees_with_tosca_parser(
    key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The parser's CSAR class leaves its extraction folders in the temporary folder: keep them in tmp_path.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert toscaparser_verdict(key, EXPECTED[key]["parser"], tmp_path) is EXPECTED[key]["valid"]


@pytest.mark.parametrize("key", DIFFERING)
def test_each_documented_divergence_from_tosca_parser_is_real(key: str, tmp_path: Path) -> None:
    assert toscaparser_verdict(key, "yaml", tmp_path) is not EXPECTED[key]["valid"]
