"""Hostile files: what an untrusted publisher could upload to hurt the validator.

Each case builds its bytes on demand and says which words the problem must
contain and its kind. test_hostile.py checks every case; bench/validate.py
measures their time and peak memory.
"""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

HEADER = "tosca_definitions_version: tosca_simple_yaml_1_3\n"
META = "TOSCA-Meta-File-Version: 1.1\nCSAR-Version: 1.1\nCreated-By: x\nEntry-Definitions: service.yaml\n"
SERVICE = HEADER + "topology_template:\n  node_templates:\n    srv:\n      type: tosca.nodes.Compute\n"


@dataclass(frozen=True)
class Hostile:
    name: str
    build: Callable[[], bytes]
    words: str | None  # in the problem's message; None: any verdict, only time and memory count
    kind: str  # tosca, support or policy
    filename: str = "service.yaml"
    seconds: float = 5.0  # the most a validation may take


def _zip(members: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buf.getvalue()


def billion_laughs() -> bytes:
    lines = [HEADER.strip(), 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    return "\n".join(lines).encode()


def alias_flood() -> bytes:
    return (HEADER + "a: &a x\nb: [" + ", ".join(["*a"] * 5000) + "]\n").encode()


def deep_flow_lists() -> bytes:
    return b"a: " + b"[" * 100_000 + b"]" * 100_000


def deep_flow_maps() -> bytes:
    return b"a: " + b"{a: " * 100_000 + b"1" + b"}" * 100_000


def deep_block_lists() -> bytes:
    return b"- " * 100_000 + b"x\n"


def deep_indentation() -> bytes:
    return "".join(" " * i + "k:\n" for i in range(5000)).encode() + b" " * 5000 + b"x\n"


def oversized() -> bytes:
    return (HEADER + "# " + "x" * (21 * 1024 * 1024) + "\n").encode()


def flat_flood() -> bytes:
    return (HEADER + "a:\n" + "  - x\n" * 3_000_000).encode()


def invalid_utf8() -> bytes:
    return HEADER.encode() + b"description: caf\xe9\n"


def nul_bytes() -> bytes:
    return HEADER.encode() + b"\0" * 1000


def long_number() -> bytes:
    # PyYAML's number patterns would take seconds on this; int() of it would take far longer.
    return (HEADER + "a: 1" + ":1" * (9 * 1024 * 1024) + "\n").encode()


def property_flood() -> bytes:
    props = "".join(f"        p{i}: {i}\n" for i in range(60_000))
    return (SERVICE + f"      properties:\n{props}").encode()


def requirement_flood() -> bytes:
    reqs = "".join("        - dependency: srv\n" for _ in range(20_000))
    return (SERVICE + f"    app:\n      type: tosca.nodes.Compute\n      requirements:\n{reqs}").encode()


def host_chain() -> bytes:
    nodes = "".join(
        f"    c{i}:\n      type: tosca.nodes.SoftwareComponent\n      requirements:\n        - host: c{i + 1}\n"
        for i in range(498)
    )
    nodes += "    c498:\n      type: tosca.nodes.SoftwareComponent\n      requirements:\n        - host: srv\n"
    return (SERVICE + nodes).encode()


def zip_bomb() -> bytes:
    return _zip([("TOSCA-Metadata/TOSCA.meta", META.encode()), ("bomb.bin", b"\0" * (150 * 1024 * 1024))])


def zip_bomb_spread() -> bytes:
    # Each entry stays under the per-entry floor; together they expand a thousand times.
    members: list[tuple[str | zipfile.ZipInfo, bytes]] = [("service.yaml", SERVICE.encode())]
    members += [(f"pad/{i}.bin", b"\0" * 1_000_000) for i in range(200)]
    return _zip(members)


def zip_member(name: str, mode: int | None = None) -> Callable[[], bytes]:
    def build() -> bytes:
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
            info.create_system = 3
        return _zip([("service.yaml", SERVICE.encode()), (info, b"x")])

    return build


def zip_duplicate() -> bytes:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _zip([("service.yaml", SERVICE.encode()), ("service.yaml", b"other: 1\n")])


def zip_many_entries() -> bytes:
    return _zip([(f"f{i}", b"") for i in range(3000)], zipfile.ZIP_STORED)


def zip_entry(entry: str) -> Callable[[], bytes]:
    def build() -> bytes:
        meta = META.replace("Entry-Definitions: service.yaml", f"Entry-Definitions: {entry}")
        return _zip([("TOSCA-Metadata/TOSCA.meta", meta.encode()), ("service.yaml", SERVICE.encode())])

    return build


def zip_truncated() -> bytes:
    return _zip([("service.yaml", SERVICE.encode() * 50)])[:-40]


def csar_yaml_bomb() -> bytes:
    return _zip([("TOSCA-Metadata/TOSCA.meta", META.encode()), ("service.yaml", billion_laughs())])


def csar_circular() -> bytes:
    a = HEADER + "imports:\n  - b.yaml\n"
    b = HEADER + "imports:\n  - a.yaml\n"
    service = SERVICE + "imports:\n  - types/a.yaml\n"
    return _zip([("service.yaml", service.encode()), ("types/a.yaml", a.encode()), ("types/b.yaml", b.encode())])


def csar_many_imports() -> bytes:
    # Each file stays under the per-file limit; together they would cost gigabytes.
    imports = "".join(f"  - types/t{i}.yaml\n" for i in range(12))
    members: list[tuple[str | zipfile.ZipInfo, bytes]] = [("service.yaml", (SERVICE + "imports:\n" + imports).encode())]
    for i in range(12):
        body = "".join(f"  - v{i}_{j}\n" for j in range(100_000))
        members.append((f"types/t{i}.yaml", (HEADER + "metadata:\n  pad:\n" + body).encode()))
    return _zip(members)


def import_url() -> bytes:
    return (SERVICE + "imports:\n  - http://10.255.255.1/slow.yaml\n").encode()


CASES: tuple[Hostile, ...] = (
    Hostile("malformed", lambda: HEADER.encode() + b"a: [1, 2\nb: }\n", "The YAML is malformed", "tosca"),
    Hostile("empty", lambda: b"", "The file is empty", "tosca"),
    Hostile("not-a-mapping", lambda: b"- a\n- b\n", "not a mapping", "tosca"),
    Hostile("invalid-utf8", invalid_utf8, "not valid UTF-8", "tosca"),
    Hostile("nul-bytes", nul_bytes, "character YAML does not allow", "tosca"),
    Hostile("billion-laughs", billion_laughs, "once aliases are expanded", "policy"),
    Hostile("alias-flood", alias_flood, "more than 100 aliases", "policy"),
    Hostile("deep-flow-lists", deep_flow_lists, "deeper than 64 levels", "policy"),
    Hostile("deep-flow-maps", deep_flow_maps, "deeper than 64 levels", "policy"),
    Hostile("deep-block-lists", deep_block_lists, "deeper than 64 levels", "policy"),
    Hostile("deep-indentation", deep_indentation, "deeper than 64 levels", "policy"),
    Hostile("oversized", oversized, "Agora accepts templates and CSARs up to 20 MiB", "policy"),
    Hostile("flat-flood", flat_flood, "more than 200000 values", "policy"),
    Hostile("long-number", long_number, "more than 100 characters", "policy"),
    Hostile("property-flood", property_flood, "found more problems than are listed here", "tosca"),
    Hostile("requirement-flood", requirement_flood, None, ""),
    Hostile("host-chain", host_chain, "no Standard lifecycle script", "support"),
    Hostile("import-url", import_url, "is a URL", "policy", seconds=1.0),
    Hostile("zip-bomb", zip_bomb, "expands more than 100 times", "policy", "service.csar"),
    Hostile("zip-bomb-spread", zip_bomb_spread, "expands more than 100 times its size", "policy", "service.csar"),
    Hostile("zip-parent-path", zip_member("../../evil.sh"), "points outside the archive", "policy", "s.csar"),
    Hostile("zip-absolute-path", zip_member("/etc/cron.d/evil"), "absolute path", "policy", "s.csar"),
    Hostile("zip-symlink", zip_member("link", stat.S_IFLNK | 0o777), "symbolic link", "policy", "s.csar"),
    Hostile("zip-duplicate", zip_duplicate, "two entries named", "policy", "s.csar"),
    Hostile("zip-many-entries", zip_many_entries, "3000 entries", "policy", "s.csar"),
    Hostile("zip-entry-outside", zip_entry("../service.yaml"), "points outside the archive", "policy", "s.csar"),
    Hostile("zip-entry-missing", zip_entry("nowhere.yaml"), "does not contain", "tosca", "s.csar"),
    Hostile("zip-truncated", zip_truncated, "not a readable zip archive", "tosca", "s.csar"),
    Hostile("csar-yaml-bomb", csar_yaml_bomb, "once aliases are expanded", "policy", "s.csar"),
    Hostile("csar-circular-imports", csar_circular, "go round in a circle", "tosca", "s.csar"),
    Hostile("csar-many-imports", csar_many_imports, "and the files it imports hold more than", "policy", "s.csar"),
)
