from __future__ import annotations

import io
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from orchestrator.tosca.csar import ArchiveError, extract_csar, is_zip
from orchestrator.tosca.model import Limits, ProblemKind
from tests.orchestrator.conftest import PROFILE_TEMPLATE, make_zip

META = "TOSCA-Meta-File-Version: 1.1\nCSAR-Version: 1.1\nCreated-By: test\nEntry-Definitions: Definitions/app.yaml\n"


def extract(data: bytes, dest: Path, limits: Limits = Limits()) -> object:  # noqa: B008
    return extract_csar(io.BytesIO(data), len(data), dest, limits)


def refusal(data: bytes, dest: Path, limits: Limits = Limits()) -> ArchiveError:  # noqa: B008
    with pytest.raises(ArchiveError) as caught:
        extract(data, dest, limits)
    return caught.value


def test_zip_is_recognised_by_its_content() -> None:
    assert is_zip(make_zip({"a.yaml": "a: 1"}))
    assert is_zip(make_zip({}))
    assert not is_zip(b"tosca_definitions_version: x")


def test_extracts_every_member_and_takes_the_entry_from_tosca_meta(tmp_path: Path) -> None:
    data = make_zip(
        {
            "TOSCA-Metadata/TOSCA.meta": META,
            "Definitions/app.yaml": PROFILE_TEMPLATE,
            "scripts/run.sh": "#!/bin/sh\n",
        }
    )
    archive = extract_csar(io.BytesIO(data), len(data), tmp_path, Limits())
    assert archive.entry == "Definitions/app.yaml"
    assert archive.meta["Created-By"] == "test"
    assert archive.has("scripts/run.sh")
    assert archive.has_folder("scripts")
    assert (tmp_path / "Definitions" / "app.yaml").read_text() == PROFILE_TEMPLATE


def test_without_tosca_meta_the_single_root_yaml_is_the_entry(tmp_path: Path) -> None:
    archive = extract_csar(
        io.BytesIO(data := make_zip({"service.yml": PROFILE_TEMPLATE, "types/t.yaml": "a: 1"})),
        len(data),
        tmp_path,
        Limits(),
    )
    assert archive.entry == "service.yml"
    assert not archive.has_meta


@pytest.mark.parametrize(
    ("members", "words", "kind"),
    [
        ({"TOSCA-Metadata/TOSCA.meta": "CSAR-Version: 1.1\n"}, "has no Entry-Definitions", ProblemKind.TOSCA),
        (
            {"TOSCA-Metadata/TOSCA.meta": "Entry-Definitions: ../outside.yaml\n"},
            "points outside the archive",
            ProblemKind.POLICY,
        ),
        (
            {"TOSCA-Metadata/TOSCA.meta": "Entry-Definitions: /etc/passwd\n"},
            "points outside the archive",
            ProblemKind.POLICY,
        ),
        ({"TOSCA-Metadata/TOSCA.meta": META}, "does not contain", ProblemKind.TOSCA),
        (
            {"TOSCA-Metadata/TOSCA.meta": "- not\n- a mapping\n"},
            "is not a list of 'Name: value' lines",
            ProblemKind.TOSCA,
        ),
        ({"a.yaml": "a: 1", "b.yaml": "b: 1"}, "2 YAML files at its root (a.yaml, b.yaml)", ProblemKind.TOSCA),
        ({"Definitions/a.yaml": "a: 1"}, "0 YAML files at its root", ProblemKind.TOSCA),
    ],
)
def test_entry_definitions_problems(
    tmp_path: Path, members: dict[str, bytes | str], words: str, kind: ProblemKind
) -> None:
    error = refusal(make_zip(members), tmp_path)
    assert words in error.message
    assert error.kind is kind


def _zip_with_raw_names(names: list[str], *, mode: int | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name in names:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
                info.create_system = 3
            archive.writestr(info, b"data")
    return buf.getvalue()


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(
    ("names", "words"),
    [
        (["../evil.yaml"], "points outside the archive"),
        (["a/../../evil.yaml"], "points outside the archive"),
        (["/etc/cron.d/evil"], "absolute path"),
        (["C:/evil.yaml"], "absolute path"),
        (["a\\..\\..\\evil"], "backslash"),
        (["dir/file", "dir/file"], "two entries named 'dir/file'"),
        (["a.yaml", "./a.yaml"], "two entries named 'a.yaml'"),
        (["x", "x/y"], "both a file and a folder"),
    ],
)
def test_refuses_members_that_could_land_outside_or_collide(tmp_path: Path, names: list[str], words: str) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    error = refusal(_zip_with_raw_names(names), dest)
    assert words in error.message
    assert error.kind is ProblemKind.POLICY
    assert list(dest.iterdir()) == []  # checked before anything is written
    assert not (tmp_path / "evil.yaml").exists()


def test_refuses_symbolic_links(tmp_path: Path) -> None:
    error = refusal(_zip_with_raw_names(["link"], mode=stat.S_IFLNK | 0o777), tmp_path)
    assert "symbolic link" in error.message


def test_refuses_device_files(tmp_path: Path) -> None:
    error = refusal(_zip_with_raw_names(["dev"], mode=stat.S_IFCHR | 0o666), tmp_path)
    assert "not a regular file" in error.message


def test_refuses_encrypted_entries(tmp_path: Path) -> None:
    data = bytearray(make_zip({"a.yaml": "a: 1"}, compression=zipfile.ZIP_STORED))
    # Set the "encrypted" flag in the local header and in the central directory.
    data[6] |= 1
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 8] |= 1
    error = refusal(bytes(data), tmp_path)
    assert "encrypted" in error.message


def test_counts_entries_from_the_end_record_before_reading_the_directory(tmp_path: Path) -> None:
    data = make_zip({f"f{i}.txt": "" for i in range(30)})
    error = refusal(data, tmp_path, Limits(max_entries=20))
    assert "30 entries" in error.message
    assert error.kind is ProblemKind.POLICY


def test_a_lying_entry_count_is_caught_once_the_directory_is_read(tmp_path: Path) -> None:
    data = bytearray(make_zip({f"f{i}.txt": "" for i in range(30)}))
    eocd = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, eocd + 8, 1, 1)  # claims one entry
    error = refusal(bytes(data), tmp_path, Limits(max_entries=20))
    assert error.kind is ProblemKind.POLICY
    assert "entries" in error.message


def test_refuses_an_entry_that_expands_beyond_the_ratio(tmp_path: Path) -> None:
    data = make_zip({"TOSCA-Metadata/TOSCA.meta": META, "bomb.bin": b"\0" * (8 * 1024 * 1024)})
    error = refusal(data, tmp_path)
    assert "expands more than 100 times" in error.message
    assert error.kind is ProblemKind.POLICY


def test_refuses_an_archive_that_expands_beyond_the_total(tmp_path: Path) -> None:
    # Random-ish data: no ratio problem, only the total.
    chunk = bytes(range(256)) * 4096
    data = make_zip({f"part{i}.bin": chunk for i in range(3)}, compression=zipfile.ZIP_STORED)
    error = refusal(data, tmp_path, Limits(max_uncompressed_bytes=2 * 1024 * 1024))
    assert "expands to more than 2 MiB" in error.message


def test_a_small_file_of_spaces_is_not_a_bomb(tmp_path: Path) -> None:
    data = make_zip({"service.yaml": PROFILE_TEMPLATE + "#" + " " * 500_000 + "\n"})
    assert extract(data, tmp_path) is not None


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04 truncated", b"PK\x03\x04" + b"\0" * 100, make_zip({"a.yaml": "a: 1"})[:-30]],
    ids=["tiny", "zeros", "cut"],
)
def test_a_corrupt_archive_is_a_tosca_problem(tmp_path: Path, data: bytes) -> None:
    error = refusal(data, tmp_path)
    assert "not a readable zip archive" in error.message
    assert error.kind is ProblemKind.TOSCA


def test_a_corrupt_member_is_a_tosca_problem(tmp_path: Path) -> None:
    data = bytearray(make_zip({"service.yaml": PROFILE_TEMPLATE}, compression=zipfile.ZIP_STORED))
    at = data.find(b"tosca_definitions_version")
    data[at : at + 5] = b"XXXXX"  # the CRC no longer matches
    error = refusal(bytes(data), tmp_path)
    assert "cannot be read" in error.message


def test_a_member_with_a_corrupt_offset_is_a_tosca_problem(tmp_path: Path) -> None:
    data = bytearray(make_zip({"service.yaml": PROFILE_TEMPLATE, "b.yaml": "b: 1"}))
    eocd = data.rfind(b"PK\x05\x06")
    (offset,) = struct.unpack_from("<I", data, eocd + 16)
    # A directory offset past the real one: zipfile then seeks members to negative positions (a ValueError).
    struct.pack_into("<I", data, eocd + 16, offset + 0x100000)
    error = refusal(bytes(data), tmp_path)
    assert "cannot be read" in error.message
    assert error.kind is ProblemKind.TOSCA


def test_corrupted_archives_never_raise_and_leave_nothing_behind(private_tmp: Path) -> None:
    import random

    from orchestrator.tosca import validate_bytes
    from tests.orchestrator.conftest import CORPUS, zip_folder

    base = zip_folder(CORPUS / "csar" / "agora_build")
    rng = random.Random(7)  # noqa: S311  # a seeded, repeatable fuzz
    for _ in range(300):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            # Half the damage in the central directory and end record, where zipfile parses most.
            at = rng.randrange(len(data)) if rng.random() < 0.5 else len(data) - 1 - rng.randrange(400)
            data[at] = rng.randrange(256)
        validate_bytes(bytes(data), filename="x.csar")
