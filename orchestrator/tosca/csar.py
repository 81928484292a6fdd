"""Extract a CSAR (a zip archive) safely, and find its entry definitions.

Never tosca-parser's CSAR class: it extracts with `extractall` into folders it
leaves behind and fetches URLs. Here every member name is checked before
anything is written, sizes and compression ratios are measured on the bytes
actually inflated (headers can lie), and the caller owns the destination folder
(a TemporaryDirectory) so nothing survives the validation.
"""

from __future__ import annotations

import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from orchestrator.tosca.model import Limits, ProblemKind, human_size
from orchestrator.tosca.safe_yaml import YamlError, load_yaml, read_limited

TOSCA_META = "TOSCA-Metadata/TOSCA.meta"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a first local file header; an empty archive
_CHUNK = 64 * 1024
# Below this many bytes a high ratio is harmless (a small file of spaces); above it, it is a bomb's signature.
_RATIO_FLOOR = 1024 * 1024
_MAX_CD_BYTES_PER_ENTRY = 1024  # a central directory record with a long name and extras fits easily
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_DRIVE = re.compile(r"^[A-Za-z]:")


class ArchiveError(Exception):
    def __init__(self, message: str, kind: ProblemKind, member: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.member = member


@dataclass(frozen=True)
class Archive:
    root: Path  # where the members were extracted
    entry: str  # the member path of the entry definitions
    members: frozenset[str]  # every file (not folder) in the archive
    folders: frozenset[str]
    meta: Mapping[str, str]  # TOSCA.meta's keys, empty without one

    @property
    def has_meta(self) -> bool:
        return bool(self.meta)

    def has(self, member: str) -> bool:
        return member in self.members

    def has_folder(self, member: str) -> bool:
        return member.rstrip("/") in self.folders


def is_zip(head: bytes) -> bool:
    return head[:4] in ZIP_MAGICS


def extract_csar(source: BinaryIO, size: int, dest: Path, limits: Limits) -> Archive:
    """Extracts `source` (a seekable file of `size` bytes) into `dest`; raises ArchiveError."""
    _check_directory(source, size, limits)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, OverflowError, struct.error) as exc:
        raise ArchiveError(f"The file is not a readable zip archive ({exc}).", ProblemKind.TOSCA) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise ArchiveError(_too_many(len(infos), limits), ProblemKind.POLICY)
        files, folders = _plan(infos)
        _extract(archive, files, size, dest, limits)
    members = frozenset(files)
    all_folders = frozenset(folders | {str(p) for m in members for p in PurePosixPath(m).parents if str(p) != "."})
    meta, entry = _entry_definitions(dest, members, limits)
    return Archive(root=dest, entry=entry, members=members, folders=all_folders, meta=meta)


def _too_many(count: int, limits: Limits) -> str:
    return f"The archive has {count} entries; Agora accepts at most {limits.max_entries}."


def _check_directory(source: BinaryIO, size: int, limits: Limits) -> None:
    """Reads the entry count from the end record before zipfile builds an object per entry."""
    tail_size = min(size, 65535 + 22 + 20)
    source.seek(size - tail_size)
    tail = source.read(tail_size)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        raise ArchiveError("The file is not a readable zip archive (no end of central directory).", ProblemKind.TOSCA)
    entries, cd_size = struct.unpack("<HI", tail[at + 10 : at + 16])
    if (entries == 0xFFFF or cd_size == 0xFFFFFFFF) and at >= 20 and tail[at - 20 : at - 16] == _EOCD64_LOCATOR:
        (offset,) = struct.unpack("<Q", tail[at - 12 : at - 4])
        if 0 <= offset <= size - 56:
            source.seek(offset)
            record = source.read(56)
            if record[:4] == b"PK\x06\x06":
                entries, cd_size = struct.unpack("<QQ", record[32:48])
    if entries > limits.max_entries or cd_size > limits.max_entries * _MAX_CD_BYTES_PER_ENTRY:
        raise ArchiveError(_too_many(entries, limits), ProblemKind.POLICY)
    source.seek(0)


def _plan(infos: list[zipfile.ZipInfo]) -> tuple[dict[str, zipfile.ZipInfo], set[str]]:
    """Checks every name and type before a byte is written: member path → info, and the folders."""
    files: dict[str, zipfile.ZipInfo] = {}
    folders: set[str] = set()
    for info in infos:
        name = info.filename
        clean = _member_name(name)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            raise ArchiveError(
                f"The archive entry {name!r} is a symbolic link; Agora accepts only files.", ProblemKind.POLICY, name
            )
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveError(f"The archive entry {name!r} is not a regular file.", ProblemKind.POLICY, name)
        if info.flag_bits & 0x1:
            raise ArchiveError(
                f"The archive entry {name!r} is encrypted; upload an unencrypted archive.", ProblemKind.POLICY, name
            )
        if clean in files or (clean in folders and not info.is_dir()):
            raise ArchiveError(f"The archive has two entries named {clean!r}.", ProblemKind.POLICY, name)
        if info.is_dir():
            folders.add(clean)
        else:
            files[clean] = info
    for member in files:
        for parent in PurePosixPath(member).parents:
            if str(parent) in files:
                raise ArchiveError(
                    f"The archive entry {str(parent)!r} is both a file and a folder.", ProblemKind.POLICY, member
                )
    return files, folders


def _member_name(name: str) -> str:
    """The normalised member path, or ArchiveError when it could land outside the extraction folder."""
    if not name or name.startswith("/") or _DRIVE.match(name):
        raise ArchiveError(f"The archive entry {name!r} has an absolute path.", ProblemKind.POLICY, name)
    if "\\" in name or any(ord(c) < 32 for c in name):
        raise ArchiveError(
            f"The archive entry {name!r} has a backslash or a control character in its name.", ProblemKind.POLICY, name
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"The archive entry {name!r} points outside the archive (..).", ProblemKind.POLICY, name)
    if not parts:
        raise ArchiveError(f"The archive entry {name!r} has no name.", ProblemKind.POLICY, name)
    return "/".join(parts)


def _extract(
    archive: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], size: int, dest: Path, limits: Limits
) -> None:
    root = dest.resolve()
    total = 0
    for member, info in files.items():
        target = root.joinpath(*member.split("/"))
        if not target.resolve().is_relative_to(root):  # the name checks make this impossible; kept as a guard
            raise ArchiveError(f"The archive entry {member!r} points outside the archive.", ProblemKind.POLICY, member)
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        entry_ratio_cap = limits.max_compression_ratio * max(info.compress_size, 1)
        overall_ratio_cap = limits.max_compression_ratio * max(size, 1)
        try:
            with archive.open(info) as src, open(target, "xb") as out:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    total += len(chunk)
                    if total > limits.max_uncompressed_bytes:
                        raise ArchiveError(
                            f"The archive expands to more than {human_size(limits.max_uncompressed_bytes)}; "
                            "Agora stops there.",
                            ProblemKind.POLICY,
                            member,
                        )
                    if written > _RATIO_FLOOR and written > entry_ratio_cap:
                        raise ArchiveError(
                            f"The archive entry {member!r} expands more than {limits.max_compression_ratio} times "
                            "its compressed size; Agora refuses it as a zip bomb.",
                            ProblemKind.POLICY,
                            member,
                        )
                    if total > _RATIO_FLOOR and total > overall_ratio_cap:
                        raise ArchiveError(
                            f"The archive expands more than {limits.max_compression_ratio} times its size; "
                            "Agora refuses it as a zip bomb.",
                            ProblemKind.POLICY,
                            member,
                        )
                    out.write(chunk)
        # zipfile's ways of saying a member is corrupt: a bad offset is a ValueError (negative seek), and so on.
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            OSError,
            NotImplementedError,
            RuntimeError,
            ValueError,
            OverflowError,
            struct.error,
        ) as exc:
            raise ArchiveError(
                f"The archive entry {member!r} cannot be read ({exc}).", ProblemKind.TOSCA, member
            ) from None


def _entry_definitions(dest: Path, members: frozenset[str], limits: Limits) -> tuple[dict[str, str], str]:
    """TOSCA.meta's Entry-Definitions, or else the one YAML file at the archive's root."""
    if TOSCA_META in members:
        meta = _read_meta(dest / TOSCA_META, limits)
        entry = meta.get("Entry-Definitions")
        if not entry:
            raise ArchiveError(
                f"{TOSCA_META} has no Entry-Definitions; add a line such as "
                "'Entry-Definitions: Definitions/service.yaml'.",
                ProblemKind.TOSCA,
                TOSCA_META,
            )
        try:
            clean = _member_name(entry)
        except ArchiveError:
            raise ArchiveError(
                f"Entry-Definitions {entry!r} points outside the archive; give a path inside it.",
                ProblemKind.POLICY,
                TOSCA_META,
            ) from None
        if clean not in members:
            raise ArchiveError(
                f"Entry-Definitions names {entry!r}, which the archive does not contain.", ProblemKind.TOSCA, TOSCA_META
            )
        return meta, clean
    roots = sorted(m for m in members if "/" not in m and m.lower().endswith((".yaml", ".yml")))
    if len(roots) != 1:
        found = ", ".join(roots) if roots else "none"
        raise ArchiveError(
            f"The archive has no {TOSCA_META} and {len(roots)} YAML files at its root ({found}); it needs exactly "
            f"one, or a {TOSCA_META} naming the Entry-Definitions.",
            ProblemKind.TOSCA,
        )
    return {}, roots[0]


def _read_meta(path: Path, limits: Limits) -> dict[str, str]:
    data = read_limited(path, limits)
    try:
        doc = load_yaml(data, limits=limits)
    except YamlError as exc:
        raise ArchiveError(
            f"{TOSCA_META} is not a list of 'Name: value' lines: {exc.message}", ProblemKind.TOSCA, TOSCA_META
        ) from None
    return {str(k): str(v) for k, v in doc.data.items() if v is not None}
