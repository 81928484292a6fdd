"""The collector's CPU share while it watches many containers (target: under 10% of one core).

    .venv/bin/python bench/monitoring_collector.py [--containers 100] [--deployments 10] [--interval 15] [--rounds 6]

CONTAINERS small busybox containers (0.05 CPU, 8 MiB each), spread over DEPLOYMENTS deployments of
an engine-mode target of the bench's own on the local Docker engine, each printing a line every
LOG_EVERY seconds. A real `manage.py monitor --target ... --interval INTERVAL` process watches
them: after its first round and the first reading of every log, its CPU time (user + system,
from /proc) is measured over ROUNDS intervals of wall time, and each round's duration is taken
from its heartbeat. The share is CPU seconds over wall seconds: 5% is a twentieth of one core.
Everything the bench starts is removed at the end.

Run directly, the bench uses a scratch PostgreSQL database of its own (bench_collector, or
BENCH_DATABASE_URL), created, migrated and dropped. bench/monitoring.py calls
`collector_cpu_share()` inside its own scratch database.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_collector")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402
from django.apps import apps  # noqa: E402

if not apps.ready:  # run directly: the bench's own database (bench/monitoring.py has set up its own)
    os.environ.update(DATABASE_URL=DATABASE_URL, ELASTICSEARCH_URL="")
    django.setup()

from django.db import connection, connections  # noqa: E402

from bench.scratch import scratch_database  # noqa: E402
from crane import conf, driver  # noqa: E402
from crane.models import Target  # noqa: E402
from crane.specs import ServiceSpec  # noqa: E402
from monitoring.models import CollectorHeartbeat, LogLine  # noqa: E402
from orchestrator.models import Deployment  # noqa: E402

CPU_TARGET = 0.10
IMAGE = "agora/busybox:latest"
MIB = 1024 * 1024
LOG_EVERY = 5
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CollectorFigures:
    containers: int
    interval: float
    rounds: int
    wall_seconds: float
    cpu_seconds: float
    round_seconds: list[float]
    lines_stored: int

    @property
    def share(self) -> float:
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0

    def report(self) -> str:
        median = statistics.median(self.round_seconds) if self.round_seconds else float("nan")
        longest = max(self.round_seconds) if self.round_seconds else float("nan")
        verdict = "meets" if self.share < CPU_TARGET else "MISSES"
        return "\n".join(
            [
                f"collector watching {self.containers} containers, a round every {self.interval:g} s",
                f"  CPU: {self.cpu_seconds:.2f} s over {self.wall_seconds:.1f} s of wall time = {self.share:.1%} "
                f"of one core ({verdict} the target of under {CPU_TARGET:.0%})",
                f"  rounds measured: {len(self.round_seconds)}, duration median {median:.2f} s, longest "
                f"{longest:.2f} s",
                f"  log lines stored meanwhile: {self.lines_stored}",
            ]
        )


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime and stime, in clock ticks


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _spec(index: int) -> ServiceSpec:
    return ServiceSpec(
        name=f"c{index}",
        image=IMAGE,
        command=("sh", "-c", f'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep {LOG_EVERY}; done'),
        cpu_limit=0.05,
        memory_limit=8 * MIB,
        options={"init": True, "stop_grace_period": 1},
    )


@contextmanager
def _containers(target: Target, count: int, deployments: int) -> Iterator[list[str]]:
    ids = [f"bc{uuid.uuid4().hex[:8]}{index}" for index in range(deployments)]
    per = [count // deployments + (1 if index < count % deployments else 0) for index in range(deployments)]

    def start(position: int) -> None:
        deployment = ids[position]
        Deployment.objects.create(
            id=deployment,
            name=f"bench {deployment}",
            target=target,
            template=b"",
            template_filename="bench.yaml",
            template_sha256="0" * 64,
            state=Deployment.State.RUNNING,
        )
        driver.ensure_network(target, deployment)
        driver.ensure_services(target, deployment, [_spec(index) for index in range(per[position])])

    def remove(deployment: str) -> None:
        try:
            driver.remove_deployment(target, deployment, timeout=120)
        except Exception as exc:  # say what is left rather than hide it
            print(f"  could not remove deployment {deployment}: {exc}", file=sys.stderr)

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(start, range(deployments)))
        connections.close_all()
        yield ids
    finally:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(remove, ids))
        connections.close_all()
        Deployment.objects.filter(pk__in=ids).delete()


def collector_cpu_share(
    *, containers: int = 100, deployments: int = 10, interval: float = 15.0, rounds: int = 6
) -> CollectorFigures:
    """Starts the containers and a collector, measures, removes everything (see the module's docstring)."""
    target = Target.objects.create(
        name=f"bench-collector-{uuid.uuid4().hex[:6]}",
        provider="on-premises",
        public_host="127.0.0.1",
        endpoint=conf.local_endpoint(),
        mode=Target.Mode.ENGINE,
        port_range_start=62000,
        port_range_end=62099,
    )
    try:
        with _containers(target, containers, deployments) as ids:
            env = {**os.environ, "DATABASE_URL": _database_url(), "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}
            command = [sys.executable, "manage.py", "monitor", "--target", target.name, "--interval", f"{interval:g}"]
            with tempfile.TemporaryFile() as output:
                process = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
                try:
                    return _measure(process, target, ids, containers, interval, rounds)
                finally:
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
                    if process.returncode:
                        output.seek(0)
                        print(output.read().decode(errors="replace")[-3000:], file=sys.stderr)
    finally:
        CollectorHeartbeat.objects.filter(target=target).delete()
        target.delete()


def _measure(
    process: subprocess.Popen[bytes], target: Target, ids: list[str], containers: int, interval: float, rounds: int
) -> CollectorFigures:
    # Warm-up: the first round, and every container's log read once from its start.
    deadline = time.monotonic() + 120 + interval
    while LogLine.objects.filter(deployment_id__in=ids).values("container").distinct().count() < containers:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the collector did not start reading every container's log in time")
        time.sleep(1)
    lines_before = LogLine.objects.filter(deployment_id__in=ids).count()
    cpu_start, wall_start = _cpu_seconds(process.pid), time.monotonic()
    seen: dict[object, float] = {}
    while time.monotonic() - wall_start < rounds * interval:
        heartbeat = CollectorHeartbeat.objects.filter(target=target).first()
        if heartbeat is not None:
            seen[heartbeat.last_round_at] = heartbeat.round_seconds
        time.sleep(0.5)
    cpu_end, wall_end = _cpu_seconds(process.pid), time.monotonic()
    return CollectorFigures(
        containers=containers,
        interval=interval,
        rounds=rounds,
        wall_seconds=wall_end - wall_start,
        cpu_seconds=cpu_end - cpu_start,
        round_seconds=list(seen.values())[1:],  # the first seen may have run before the measure began
        lines_stored=LogLine.objects.filter(deployment_id__in=ids).count() - lines_before,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--deployments", type=int, default=10)
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between rounds (the default is 15)")
    parser.add_argument("--rounds", type=int, default=6, help="intervals of wall time measured")
    args = parser.parse_args()
    with scratch_database(DATABASE_URL):
        figures = collector_cpu_share(
            containers=args.containers, deployments=args.deployments, interval=args.interval, rounds=args.rounds
        )
    print(figures.report())


if __name__ == "__main__":
    main()
