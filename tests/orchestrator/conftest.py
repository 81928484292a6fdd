from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent.parent / "data" / "tosca"


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Points tempfile at an empty folder; whatever validation leaves there fails the test."""
    folder = tmp_path / "tempdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert list(folder.iterdir()) == [], "validation left temporary files behind"


def zip_folder(folder: Path) -> bytes:
    """A CSAR of the folder's files, with paths relative to it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buf.getvalue()


def make_zip(members: dict[str, bytes | str], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


PROFILE_TEMPLATE = """\
tosca_definitions_version: tosca_simple_yaml_1_3
imports:
  - agora/v1/profile.yaml
topology_template:
  node_templates:
    web:
      type: agora.nodes.Container
      properties:
        image: nginx:1.25
"""
