"""How long validation takes, against tosca-parser alone, and what hostile files cost.

    .venv/bin/python bench/validate.py [--runs N]

1. Templates of 10, 50 and 200 nodes, each validated by Agora (validate_path)
   and by tosca-parser alone (ToscaTemplate) on the same file: the median of
   several runs, and the ratio (target: at most 1.2x).
2. Each hostile file of tests/orchestrator/hostile.py validated in a child
   process: its time and peak memory (targets: under 5 s and 300 MB).
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from toscaparser.tosca_template import ToscaTemplate  # noqa: E402

from orchestrator.tosca import AGORA_PROFILE_IMPORT, PROFILE_PATH, validate_path  # noqa: E402
from tests.orchestrator.hostile import CASES  # noqa: E402

SIZES = (10, 50, 200)
RATIO_TARGET = 1.2


def docker_template(nodes: int) -> str:
    """Normative types: Docker applications depending on each other, on one runtime and host."""
    apps = []
    for i in range(nodes - 2):
        deps = f"        - dependency: app{i - 1}\n" if i else ""
        apps.append(
            f"    app{i}:\n      type: tosca.nodes.Container.Application.Docker\n      artifacts:\n"
            f"        image:\n          file: registry.example.org/app{i}:1.0\n"
            "          type: tosca.artifacts.Deployment.Image.Container.Docker\n"
            f"      requirements:\n        - host: docker\n{deps}"
        )
    return (
        "tosca_definitions_version: tosca_simple_yaml_1_3\n"
        "metadata:\n  template_name: bench-docker\n  template_version: '1.0'\n"
        "topology_template:\n  inputs:\n    greeting:\n      type: string\n      default: hello\n"
        "  node_templates:\n" + "".join(apps) + "    docker:\n      type: tosca.nodes.Container.Runtime\n"
        "      requirements:\n        - host: server\n    server:\n      type: tosca.nodes.Compute\n"
    )


def agora_template(nodes: int) -> str:
    """Agora's profile: containers with ports, environment and limits, half of them with a volume."""
    parts = []
    for i in range(nodes):
        if i % 2:
            parts.append(f"    data{i}:\n      type: agora.nodes.Volume\n      properties:\n        size: 2 GB\n")
            continue
        deps = f"        - connection: web{i - 2}\n" if i >= 2 else ""
        parts.append(
            f"    web{i}:\n      type: agora.nodes.Container\n      properties:\n"
            f"        image: registry.example.org/web{i}:1.0\n"
            "        environment:\n          MODE: production\n          TITLE: { get_input: title }\n"
            "        ports:\n          - target: 8080\n        cpu_limit: 0.5\n        mem_limit: 256 MB\n"
            "      requirements:\n"
            f"        - volume:\n            node: data{i + 1}\n            relationship:\n"
            "              type: agora.relationships.MountsVolume\n              properties:\n"
            f"                location: /data\n{deps}"
        )
    return (
        "tosca_definitions_version: tosca_simple_yaml_1_3\n"
        f"imports:\n  - {AGORA_PROFILE_IMPORT}\n"
        "topology_template:\n  inputs:\n    title:\n      type: string\n      default: Bench\n"
        "  node_templates:\n" + "".join(parts)
    )


def median_seconds(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def parser_alone(path: Path) -> Callable[[], object]:
    def run() -> object:
        try:
            return ToscaTemplate(str(path))
        except Exception as exc:  # an invalid verdict is still a measured run
            return exc

    return run


def compare(folder: Path, runs: int) -> bool:
    print(f"Validation time, median of {runs} runs (Agora: validate_path; tosca-parser: ToscaTemplate on the file)")
    print(f"{'template':<18}{'nodes':>6}{'Agora ms':>11}{'parser ms':>11}{'ratio':>8}  verdict")
    within = True
    for family, build in (("normative docker", docker_template), ("agora profile", agora_template)):
        for size in SIZES:
            case = folder / f"{family.split()[0]}-{size}"
            case.mkdir()
            path = case / "service.yaml"
            path.write_text(build(size))
            # tosca-parser reads the profile import relative to the file: give it the same profile there.
            (case / AGORA_PROFILE_IMPORT).parent.mkdir(parents=True)
            shutil.copy(PROFILE_PATH, case / AGORA_PROFILE_IMPORT)
            report = validate_path(path)
            for _ in range(2):  # warm both up
                validate_path(path)
                parser_alone(path)()
            agora = median_seconds(functools.partial(validate_path, path), runs)
            parser = median_seconds(parser_alone(path), runs)
            ratio = agora / parser
            within = within and ratio <= RATIO_TARGET
            verdict = ("valid" if report.valid else "not valid") + (", deployable" if report.deployable else "")
            print(f"{family:<18}{size:>6}{agora * 1000:>11.1f}{parser * 1000:>11.1f}{ratio:>7.2f}x  {verdict}")
    print(f"ratio target {RATIO_TARGET}x: {'met' if within else 'MISSED'}")
    return within


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from orchestrator.tosca import validate_bytes
    path, filename = sys.argv[1], sys.argv[2]
    data = Path(path).read_bytes()
    start = time.perf_counter()
    report = validate_bytes(data, filename=filename)
    seconds = time.perf_counter() - start
    status = Path("/proc/self/status").read_text()
    peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    first = report.problems[0].message if report.problems else "no problem"
    print(f"{seconds:.3f}\\t{int(peak) / 1024:.0f}\\t{first}")
    """
)


def hostile(folder: Path) -> bool:
    print()
    print("Hostile files, each validated as an upload in its own process (peak memory: VmHWM of that process)")
    print(f"{'case':<24}{'size':>10}{'seconds':>9}{'peak MiB':>10}  first problem")
    within = True
    for case in CASES:
        path = folder / f"hostile-{case.name}"
        data = case.build()
        path.write_bytes(data)
        del data
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), case.filename],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        seconds, peak, first = done.stdout.strip().split("\t", 2)
        within = within and float(seconds) < 5 and float(peak) < 300
        size = path.stat().st_size
        print(f"{case.name:<24}{_size(size):>10}{float(seconds):>9.3f}{peak:>10}  {first[:70]}")
        path.unlink()
    print(f"targets (under 5 s, under 300 MB): {'met' if within else 'MISSED'}")
    return within


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9, help="runs per template (the median is printed)")
    args = parser.parse_args()
    os.chdir(REPO)
    with tempfile.TemporaryDirectory(prefix="agora-bench-") as tmp:
        fast = compare(Path(tmp), args.runs)
        safe = hostile(Path(tmp))
    return 0 if fast and safe else 1


if __name__ == "__main__":
    sys.exit(main())
