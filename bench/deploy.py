"""How long Agora takes to deploy a template end to end, against `docker stack deploy` of the same stack.

    .venv/bin/python bench/deploy.py [--sizes 1,10,30] [--workers 1,4] [--runs 3] [--subscriptions 20]

For each size N, a template of N independent busybox httpd containers on Agora's profile
(a health check, a published port each: the services of bench/crane.py) is deployed through
the whole engine: `deployment_create`, steps as RQ jobs run by real `manage.py worker`
processes (1 and 4 of them), until the deployment is "running" (every wait step saw its
tasks running and healthy, outputs evaluated). `docker stack deploy` of the same services
(bench/crane.py's compose file and task poll; the docker CLI by subprocess, only here) is
timed on the same engine, alternating with Agora's runs. Then SUBSCRIPTIONS deployments of a
1-container template are created at once, with the largest worker pool, and timed until all
run. Figures are medians of the runs; the target is Agora at most 1.25x stack deploy for 10
containers with 4 workers.

The bench uses a scratch PostgreSQL database of its own (agora_bench, or the database named by
BENCH_DATABASE_URL), created and migrated at start and dropped at the end, a queue of its own on
REDIS_URL, and the local Docker engine as an active swarm manager. Everything it deploys is removed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/agora_bench")
QUEUE = f"agora-bench-{uuid.uuid4().hex[:8]}"
os.environ.update(DATABASE_URL=DATABASE_URL, AGORA_QUEUE=QUEUE)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import yaml  # noqa: E402
from rq import Worker  # noqa: E402

from bench.crane import COMMAND, HEALTH, compose, wait_running  # noqa: E402
from bench.scratch import scratch_database  # noqa: E402
from crane import conf, driver, targets  # noqa: E402
from crane.models import Target  # noqa: E402
from orchestrator.models import Deployment  # noqa: E402
from orchestrator.queue import redis_connection, step_queue  # noqa: E402
from orchestrator.services import deployment_create  # noqa: E402

RATIO_TARGET = 1.25
POLL = 0.05
AGORA_PORTS = (61000, 61499)  # above the kernel's ephemeral ports and the test suite's port blocks


def template(count: int) -> bytes:
    """N independent nodes web0..web{N-1}, as bench/crane.py's specs say them, on Agora's profile."""
    nodes = {
        f"web{index}": {
            "type": "agora.nodes.Container",
            "properties": {
                "image": "agora/busybox:latest",
                "command": ["sh", "-c", COMMAND],
                "environment": {"GREETING": f"web{index}"},
                "ports": [{"target": 80}],
                "cpu_limit": 0.25,
                "mem_limit": "32 MB",
                "healthcheck": {"test": ["CMD-SHELL", HEALTH], "interval": "0.5 s", "timeout": "2 s", "retries": 3},
            },
        }
        for index in range(count)
    }
    document = {
        "tosca_definitions_version": "tosca_simple_yaml_1_3",
        "imports": ["agora/v1/profile.yaml"],
        "topology_template": {"node_templates": nodes},
    }
    return yaml.safe_dump(document, sort_keys=False).encode()


# --- the scratch database and the workers -------------------------------------------------------------


@contextmanager
def worker_pool(size: int, logs: Path) -> Iterator[None]:
    """`size` real `manage.py worker` processes on the bench's queue, ready when the block starts."""
    processes = []
    try:
        for index in range(size):
            log = (logs / f"worker-{size}-{index}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "worker", "--name", f"{QUEUE}-{size}-{index}"],
                    cwd=REPO,
                    env=os.environ.copy(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
        queue = step_queue(redis_connection())
        deadline = time.monotonic() + 60
        while Worker.count(queue=queue) < size:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise SystemExit(f"the {size} worker(s) did not start; see {logs}")
            time.sleep(0.1)
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- timing --------------------------------------------------------------------------------------------


def eventually(action: Callable[[], object], what: str, timeout: float = 120) -> None:
    """Cleanup that outlasts a Docker hiccup (another run restarting dockerd); says what is left if it cannot."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            action()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                print(f"could not {what} ({exc}); remove it by hand", file=sys.stderr)
                return
            time.sleep(2)


def until_running(deployments: list[Deployment], timeout: float = 300) -> None:
    ids = [d.pk for d in deployments]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = dict(Deployment.objects.filter(pk__in=ids).values_list("pk", "state"))
        if any(s == Deployment.State.FAILED for s in states.values()):
            failed = Deployment.objects.filter(pk__in=ids, state=Deployment.State.FAILED).first()
            raise SystemExit(f"deployment {failed.pk if failed else '?'} failed: {failed.error if failed else ''}")
        if all(s == Deployment.State.RUNNING for s in states.values()):
            return
        time.sleep(POLL)
    raise SystemExit(f"deployments {ids} were not all running after {timeout} s")


def run_agora(target: Target, client: Any, count: int, deployments: int = 1) -> float:
    """Seconds from deployment_create until every one of `deployments` N-container deployments runs."""
    data = template(count)
    made: list[Deployment] = []
    try:
        started = time.monotonic()
        for index in range(deployments):
            made.append(
                deployment_create(template=data, filename=f"bench-{count}-{index}.yaml", inputs={}, target=target)
            )
        until_running(made)
        seconds = time.monotonic() - started
        for deployment in made:  # the same check as the stack's: every service has its task running
            wait_running(client, f"agora.deployment={deployment.pk}", count, timeout=30)
        return seconds
    finally:
        for pk in [d.pk for d in made]:
            eventually(partial(driver.remove_deployment, target, pk, timeout=120), f"remove deployment {pk}")


def run_stack(client: Any, count: int, folder: Path) -> float:
    """bench/crane.py's stack deploy, less what a template on Agora's profile cannot say (init, grace period)."""
    stack = "bench" + uuid.uuid4().hex[:8]
    document = compose(count)
    for service in document["services"].values():
        service.pop("init", None)
        service.pop("stop_grace_period", None)
    path = folder / f"{stack}.json"  # JSON is YAML
    path.write_text(json.dumps(document))
    label = f"com.docker.stack.namespace={stack}"
    try:
        started = time.monotonic()
        subprocess.run(
            ["docker", "stack", "deploy", "--resolve-image", "never", "-c", str(path), stack],
            check=True,
            capture_output=True,
        )
        wait_running(client, label, count)
        return time.monotonic() - started
    finally:
        eventually(
            lambda: subprocess.run(["docker", "stack", "rm", stack], check=True, capture_output=True),
            f"remove stack {stack}",
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
            client.api.containers(all=True, filters={"label": label}) or client.api.networks(filters={"label": label})
        ):
            time.sleep(0.2)


def median_of(runs: int, work: Callable[[], float]) -> tuple[float, list[float]]:
    times = [work() for _ in range(runs)]
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,30", help="containers per template, comma-separated")
    parser.add_argument("--workers", default="1,4", help="worker pool sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per case; the median is shown")
    parser.add_argument("--subscriptions", type=int, default=20, help="1-container deployments created at once")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    pools = sorted(int(w) for w in args.workers.split(","))

    agora: dict[tuple[int, int], tuple[float, list[float]]] = {}
    stack: dict[int, tuple[float, list[float]]] = {}
    burst: tuple[float, list[float]] | None = None
    with scratch_database(DATABASE_URL), tempfile.TemporaryDirectory(prefix="agora-bench-deploy-") as folder:
        target = Target.objects.create(
            name="bench-local",
            provider="on-premises",
            public_host="127.0.0.1",
            endpoint=conf.local_endpoint(),
            mode=Target.Mode.SWARM,
            port_range_start=AGORA_PORTS[0],
            port_range_end=AGORA_PORTS[1],
        )
        check = targets.target_check(target)
        if check.swarm_role != "manager":
            raise SystemExit(
                f"bench/deploy.py needs the local Docker engine as a swarm manager: {check.error or check}"
            )
        client = targets.client_for(target)
        for pool in pools:
            with worker_pool(pool, Path(folder)):
                for count in sizes:
                    times, stack_times = [], []
                    for run in range(args.runs):
                        # The stack runs beside the largest pool, in alternating order (as bench/crane.py does).
                        with_stack = pool == pools[-1]
                        if with_stack and run % 2:
                            stack_times.append(run_stack(client, count, Path(folder)))
                        times.append(run_agora(target, client, count))
                        if with_stack and not run % 2:
                            stack_times.append(run_stack(client, count, Path(folder)))
                    agora[(count, pool)] = (statistics.median(times), times)
                    if stack_times:
                        stack[count] = (statistics.median(stack_times), stack_times)
                    print(
                        f"  {count} containers, {pool} worker(s): agora {[round(t, 2) for t in times]}"
                        + (f", stack {[round(t, 2) for t in stack_times]}" if stack_times else ""),
                        file=sys.stderr,
                        flush=True,
                    )
                if pool == pools[-1] and args.subscriptions:
                    burst = median_of(args.runs, lambda: run_agora(target, client, 1, deployments=args.subscriptions))
                    print(
                        f"  {args.subscriptions} deployments at once, {pool} worker(s): "
                        f"{[round(t, 2) for t in burst[1]]}",
                        file=sys.stderr,
                        flush=True,
                    )

    print(f"\ndeployment wall time until running, median of {args.runs} run(s)")
    header = "".join(f"  {f'{p} worker' + ('s' if p > 1 else '') + ' (s)':>15}" for p in pools)
    print(f"{'containers':>10}{header}  {'stack deploy (s)':>16}  {f'ratio ({pools[-1]}w)':>11}")
    for count in sizes:
        cells = "".join(f"  {agora[(count, p)][0]:>15.2f}" for p in pools)
        ratio = agora[(count, pools[-1])][0] / stack[count][0]
        print(f"{count:>10}{cells}  {stack[count][0]:>16.2f}  {ratio:>11.2f}")
    if 10 in sizes and 4 in pools:
        ratio = agora[(10, 4)][0] / stack[10][0]
        verdict = "met" if ratio <= RATIO_TARGET else "MISSED"
        print(f"\ntarget: 10 containers with 4 workers at most {RATIO_TARGET}x stack deploy: {ratio:.2f}x, {verdict}")
    if burst is not None:
        print(
            f"{args.subscriptions} one-container deployments created at once, {pools[-1]} worker(s): all running after "
            f"{burst[0]:.2f} s"
        )


if __name__ == "__main__":
    main()
