"""Find, check and load every file a template imports, before tosca-parser sees any.

tosca-parser would follow absolute paths, `file://` and URLs (with no timeout),
recurse forever on circular imports, and resolve relative names against the
process's working directory first. So Agora walks the imports itself: each one
must be Agora's profile, or a relative path that stays inside the archive (CSAR)
or under the root folder (CLI); an uploaded single YAML may import only the
profile. Every accepted file is read with the bounded loader, and each file's
`imports` are rewritten to the absolute paths checked here, which is what the
parser is then given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.tosca.model import Limits, Problem, ProblemKind, Severity, human_size
from orchestrator.tosca.safe_yaml import YamlDocument, YamlError, load_yaml, read_limited

AGORA_PROFILE_IMPORT = "agora/v1/profile.yaml"  # the import name templates use for Agora's profile
PROFILE_ROOT = Path(__file__).resolve().parent / "profile"
PROFILE_PATH = PROFILE_ROOT / AGORA_PROFILE_IMPORT
MAX_IMPORTED_FILES = 100

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")  # any scheme: http:, https:, file:, ftp:, data: ...
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


@dataclass(frozen=True)
class Scope:
    """Where a template's relative paths may lead."""

    kind: str  # "upload": only the profile; "archive": inside the CSAR; "folder": under root
    root: Path | None = None  # resolved
    main_name: str = ""  # how problems name the entry file
    main_path: Path | None = None  # its absolute path on disk, None for an upload

    @property
    def where(self) -> str:
        if self.kind == "archive":
            return "the archive"
        return f"the folder {self.root}" if self.root else "the template's folder"

    def display(self, path: Path) -> str:
        """How problems name a file: its path in the archive, or relative to the entry file as the user gave it."""
        if path == PROFILE_PATH:
            return AGORA_PROFILE_IMPORT
        if self.kind == "archive" and self.root is not None and path.is_relative_to(self.root):
            return path.relative_to(self.root).as_posix()
        if self.main_path is not None:
            rel = os.path.relpath(path, self.main_path.parent)
            return os.path.normpath(os.path.join(os.path.dirname(self.main_name), rel))
        return str(path)


@dataclass(frozen=True)
class SourceFile:
    name: str
    path: Path | None
    document: YamlDocument
    data: dict[Any, Any]  # the document with its imports rewritten to checked absolute paths
    namespace_prefix: str | None = None


@dataclass
class Sources:
    main: SourceFile
    imported: dict[str, SourceFile] = field(default_factory=dict)  # absolute path → file, in load order
    problems: list[Problem] = field(default_factory=list)

    def files(self) -> Iterator[SourceFile]:
        yield self.main
        yield from self.imported.values()


def load_sources(document: YamlDocument, scope: Scope, limits: Limits) -> Sources:
    main = SourceFile(name=scope.main_name, path=scope.main_path, document=document, data=document.data)
    walker = _Walker(scope, limits)
    walker.nodes, walker.bytes = document.nodes, document.size
    data = walker.rewrite(main, [str(scope.main_path) if scope.main_path else "<upload>"])
    sources = Sources(main=SourceFile(main.name, main.path, document, data), problems=walker.problems)
    sources.imported = walker.loaded
    return sources


class _Walker:
    def __init__(self, scope: Scope, limits: Limits) -> None:
        self.scope = scope
        self.limits = limits
        self.loaded: dict[str, SourceFile] = {}
        self.failed: set[str] = set()
        self.problems: list[Problem] = []
        # The template and its imports share the limits on YAML values and bytes.
        self.nodes = 0
        self.bytes = 0
        self.exhausted = False

    def problem(self, kind: ProblemKind, message: str, file: SourceFile, index: int | None) -> None:
        line = file.document.line("imports", index) if index is not None else file.document.line("imports")
        self.problems.append(Problem(Severity.ERROR, kind, message, file.name, line, None))

    def rewrite(self, file: SourceFile, stack: list[str]) -> dict[Any, Any]:
        """The file's data with each accepted import pointing at a checked absolute path, loading those files."""
        data = file.document.data
        imports = data.get("imports")
        if imports is None or imports == []:
            return data
        if not isinstance(imports, list):
            self.problem(ProblemKind.TOSCA, "imports must be a list of files to import.", file, None)
            return {k: v for k, v in data.items() if k != "imports"}
        kept: list[Any] = []
        for index, item in enumerate(imports):
            if isinstance(item, str):
                target = self.follow(item, file, index, stack, None)
                if target is not None:
                    kept.append(target)
            elif isinstance(item, dict) and item:
                entry: dict[Any, Any] = {}
                for name, spec in item.items():
                    ref, prefix = (
                        (spec.get("file"), spec.get("namespace_prefix")) if isinstance(spec, dict) else (spec, None)
                    )
                    if isinstance(spec, dict) and spec.get("repository") is not None:
                        self.problem(
                            ProblemKind.POLICY,
                            f"Import {name!r} comes from repository {spec.get('repository')!r}: Agora never fetches "
                            "templates from the network; put the file in the CSAR and import it by relative path.",
                            file,
                            index,
                        )
                        continue
                    if not isinstance(ref, str) or not ref:
                        self.problem(ProblemKind.TOSCA, f"Import {name!r} gives no file to import.", file, index)
                        continue
                    target = self.follow(ref, file, index, stack, prefix if isinstance(prefix, str) else None)
                    if target is not None:
                        entry[name] = {**spec, "file": target} if isinstance(spec, dict) else target
                if entry:
                    kept.append(entry)
            else:
                self.problem(
                    ProblemKind.TOSCA,
                    "Each import must be a file name or a mapping such as {name: {file: types.yaml}}.",
                    file,
                    index,
                )
        rewritten = {k: v for k, v in data.items() if k != "imports"}
        if kept:
            rewritten["imports"] = kept
        return rewritten

    def follow(self, ref: str, file: SourceFile, index: int, stack: list[str], prefix: str | None) -> str | None:
        """Checks one import; loads it the first time; returns the absolute path to give the parser."""
        target = self.locate(ref, file, index)
        if target is None:
            return None
        key = str(target)
        if key in stack:
            names = [self._name_of(p) for p in stack[stack.index(key) :]] + [self.scope.display(target)]
            self.problem(
                ProblemKind.TOSCA,
                "The imports go round in a circle: " + " → ".join(names) + ". Remove one of these imports.",
                file,
                index,
            )
            return None
        if key in self.failed:
            return None
        if key not in self.loaded:
            if len(self.loaded) >= MAX_IMPORTED_FILES:
                self.problem(
                    ProblemKind.POLICY,
                    f"The template imports more than {MAX_IMPORTED_FILES} files; Agora stops there.",
                    file,
                    index,
                )
                self.failed.add(key)
                return None
            loaded = self.load(target, file, index, prefix)
            if loaded is None:
                self.failed.add(key)
                return None
            self.loaded[key] = loaded  # placed before the walk below so diamonds load once
            data = self.rewrite(loaded, [*stack, key])
            self.loaded[key] = SourceFile(loaded.name, loaded.path, loaded.document, data, prefix)
        return key

    def _name_of(self, key: str) -> str:
        if key == "<upload>":
            return self.scope.main_name
        return self.scope.display(Path(key))

    def locate(self, ref: str, file: SourceFile, index: int) -> Path | None:
        if ref.removeprefix("./") == AGORA_PROFILE_IMPORT:
            return PROFILE_PATH
        if _URL.match(ref) and not _DRIVE.match(ref):
            self.problem(
                ProblemKind.POLICY,
                f"The import {ref!r} is a URL: Agora never fetches templates from the network. Put the file in "
                "a CSAR and import it by a relative path.",
                file,
                index,
            )
            return None
        if ref.startswith(("/", "\\")) or _DRIVE.match(ref):
            self.problem(
                ProblemKind.POLICY,
                f"The import {ref!r} is an absolute path: Agora reads imports only from {self.scope.where}. "
                "Use a path relative to the importing file.",
                file,
                index,
            )
            return None
        if self.scope.kind == "upload" or file.path is None or file.path == PROFILE_PATH:
            self.problem(
                ProblemKind.TOSCA,
                f"The import {ref!r} cannot be found: an uploaded single YAML can import only Agora's profile "
                f"({AGORA_PROFILE_IMPORT}). Upload a CSAR that contains {ref!r} next to the template.",
                file,
                index,
            )
            return None
        assert self.scope.root is not None
        candidate = Path(os.path.normpath(file.path.parent / ref))
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError):
            resolved = candidate
        if not candidate.is_relative_to(self.scope.root) or not resolved.is_relative_to(self.scope.root):
            hint = "" if self.scope.kind == "archive" else " (the CLI's --root widens it)"
            self.problem(
                ProblemKind.POLICY,
                f"The import {ref!r} points outside {self.scope.where}{hint}; Agora reads imports only from there.",
                file,
                index,
            )
            return None
        if not resolved.is_file():
            self.problem(
                ProblemKind.TOSCA,
                f"The import {ref!r} cannot be found in {self.scope.where} (looked for "
                f"{self.scope.display(candidate)}).",
                file,
                index,
            )
            return None
        return resolved

    def load(self, target: Path, file: SourceFile, index: int, prefix: str | None) -> SourceFile | None:
        name = self.scope.display(target)
        if self.exhausted:  # already said once; the rest would only repeat it
            return None
        try:
            data = read_limited(target, self.limits)
            if self.bytes + len(data) > self.limits.max_uncompressed_bytes:
                self.exhausted = True
                most = human_size(self.limits.max_uncompressed_bytes)
                self.problem(
                    ProblemKind.POLICY,
                    f"The template and the files it imports are larger than {most} together; Agora stops there.",
                    file,
                    index,
                )
                return None
            document = load_yaml(data, limits=self.limits, nodes_before=self.nodes)
        except OSError as exc:
            self.problem(ProblemKind.TOSCA, f"The import {name!r} cannot be read ({exc.strerror}).", file, index)
            return None
        except YamlError as exc:
            kind = ProblemKind.POLICY if exc.limit else ProblemKind.TOSCA
            self.exhausted = exc.limit and self.nodes > 0
            self.problems.append(Problem(Severity.ERROR, kind, exc.message, name, exc.line, None))
            return None
        self.nodes += document.nodes
        self.bytes += document.size
        for warning in document.warnings:
            self.problems.append(
                Problem(Severity.WARNING, ProblemKind.TOSCA, warning.message, name, warning.line, None)
            )
        return SourceFile(name=name, path=target, document=document, data=document.data, namespace_prefix=prefix)
