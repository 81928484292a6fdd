"""How long crane takes to bring services up, against `docker stack deploy` of the same services.

    .venv/bin/python bench/crane.py [--sizes 1,10,30] [--runs 3]

For each size N: N busybox httpd services, each with a health check, a published
host-mode port and a dnsrr endpoint on one overlay network. Timed from the first
call until every task runs (a task with a health check runs only once healthy):

- crane: ensure_network, then ensure_services for the N specs;
- stack: `docker stack deploy` of the equivalent compose file (here, and only
  here, the docker CLI is run by subprocess).

Both are polled the same way (one task list every 50 ms), one after the other on
the same engine, and everything is removed after each case. The table shows the
median of the runs and the ratio crane/stack (target: at most 1.2x). Needs the
local Docker engine as an active swarm manager and the image agora/busybox:latest.
Without DATABASE_URL the bench keeps its rows in a throwaway SQLite database.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
if not os.environ.get("DATABASE_URL"):
    os.environ["AGORA_DATA_DIR"] = tempfile.mkdtemp(prefix="agora-bench-crane-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from crane import conf, driver, targets  # noqa: E402
from crane.models import Target  # noqa: E402
from crane.specs import HealthCheck, Port, ServiceSpec  # noqa: E402

IMAGE = "agora/busybox:latest"
RATIO_TARGET = 1.2
POLL = 0.05
COMMAND = (
    'echo "serving $GREETING"; mkdir -p /www && echo "hello $GREETING" > /www/index.html && exec httpd -f -p 80 -h /www'
)
HEALTH = "nc -w 1 127.0.0.1 80 </dev/null"
DRIVER_PORTS = (46000, 46499)
STACK_PORTS = 46500


def spec(index: int) -> ServiceSpec:
    return ServiceSpec(
        name=f"web{index}",
        image=IMAGE,
        command=("sh", "-c", COMMAND),
        environment={"GREETING": f"web{index}"},
        ports=(Port(80),),
        cpu_limit=0.25,
        memory_limit=32 * 1024 * 1024,
        healthcheck=HealthCheck(test=("CMD-SHELL", HEALTH), interval=0.5, timeout=2, retries=3),
        options={"init": True, "stop_grace_period": 1},
    )


def compose(count: int) -> dict[str, Any]:
    """The same services as `spec`, as a compose file for `docker stack deploy`."""
    services = {}
    for index in range(count):
        services[f"web{index}"] = {
            "image": IMAGE,
            "command": ["sh", "-c", COMMAND.replace("$", "$$")],
            "environment": {"GREETING": f"web{index}"},
            "init": True,
            "stop_grace_period": "1s",
            "cap_drop": ["AUDIT_WRITE", "MKNOD", "NET_RAW", "SETFCAP", "SETPCAP", "SYS_CHROOT"],
            "healthcheck": {"test": ["CMD-SHELL", HEALTH], "interval": "500ms", "timeout": "2s", "retries": 3},
            "ports": [{"target": 80, "published": STACK_PORTS + index, "protocol": "tcp", "mode": "host"}],
            "deploy": {
                "endpoint_mode": "dnsrr",
                "replicas": 1,
                "resources": {"limits": {"cpus": "0.25", "memory": "32M"}},
                "restart_policy": {"condition": "any", "delay": "2s"},
                "update_config": {"parallelism": 1, "failure_action": "rollback", "order": "stop-first"},
            },
        }
    return {"version": "3.8", "services": services, "networks": {"default": {"driver": "overlay", "attachable": True}}}


def wait_running(client: Any, label: str, count: int, timeout: float = 300) -> None:
    """Until `count` services with the label each have a running task (the same poll for both sides)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services = client.api.services(filters={"label": label})
        if len(services) == count:
            tasks = client.api.tasks(filters={"service": [s["ID"] for s in services], "desired-state": "running"})
            running = {t["ServiceID"] for t in tasks if t["Status"]["State"] == "running"}
            if len(running) == count:
                return
        time.sleep(POLL)
    raise SystemExit(f"{count} services with {label} were not all running after {timeout} s")


def timed(work: Callable[[], None]) -> float:
    started = time.monotonic()
    work()
    return time.monotonic() - started


def run_driver(target: Target, client: Any, count: int) -> float:
    deployment = "bench" + uuid.uuid4().hex[:8]

    def deploy() -> None:
        driver.ensure_network(target, deployment)
        driver.ensure_services(target, deployment, [spec(i) for i in range(count)])
        wait_running(client, f"agora.deployment={deployment}", count)

    try:
        seconds = timed(deploy)
        # The driver's own wait agrees: every node is ready.
        assert all(s.ready for s in driver.wait_deployment_healthy(target, deployment, timeout=30))
        return seconds
    finally:
        driver.remove_deployment(target, deployment, timeout=120)


def run_stack(client: Any, count: int, folder: Path) -> float:
    stack = "bench" + uuid.uuid4().hex[:8]
    path = folder / f"{stack}.json"  # JSON is YAML
    path.write_text(json.dumps(compose(count)))
    label = f"com.docker.stack.namespace={stack}"

    def deploy() -> None:
        subprocess.run(
            ["docker", "stack", "deploy", "--resolve-image", "never", "-c", str(path), stack],
            check=True,
            capture_output=True,
        )
        wait_running(client, label, count)

    try:
        return timed(deploy)
    finally:
        subprocess.run(["docker", "stack", "rm", stack], check=True, capture_output=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
            client.api.containers(all=True, filters={"label": label}) or client.api.networks(filters={"label": label})
        ):
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,30", help="numbers of services, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per size and side; the median is shown")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    call_command("migrate", verbosity=0)
    target, _ = Target.objects.update_or_create(
        name="bench-local",
        defaults={
            "public_host": "127.0.0.1",
            "endpoint": conf.local_endpoint(),
            "mode": Target.Mode.SWARM,
            "port_range_start": DRIVER_PORTS[0],
            "port_range_end": DRIVER_PORTS[1],
        },
    )
    check = targets.target_check(target)
    if check.swarm_role != "manager":
        raise SystemExit(f"bench/crane.py needs the local Docker engine as a swarm manager: {check.error or check}")
    client = targets.client_for(target)

    rows = []
    with tempfile.TemporaryDirectory(prefix="agora-bench-stack-") as folder:
        for count in sizes:
            crane_times, stack_times = [], []
            for run in range(args.runs):
                # Alternate the order so that neither side always runs on a freshly cleaned engine.
                if run % 2:
                    stack_times.append(run_stack(client, count, Path(folder)))
                    crane_times.append(run_driver(target, client, count))
                else:
                    crane_times.append(run_driver(target, client, count))
                    stack_times.append(run_stack(client, count, Path(folder)))
            crane_s, stack_s = statistics.median(crane_times), statistics.median(stack_times)
            rows.append((count, crane_s, stack_s, crane_s / stack_s))
            print(
                f"  {count} services: crane {[round(t, 2) for t in crane_times]}, "
                f"stack {[round(t, 2) for t in stack_times]}",
                file=sys.stderr,
                flush=True,
            )

    print(f"\nservices running and healthy, median of {args.runs} run(s); target ratio <= {RATIO_TARGET}")
    print(f"{'services':>8}  {'crane (s)':>10}  {'stack deploy (s)':>16}  {'ratio':>6}")
    for count, crane_s, stack_s, ratio in rows:
        verdict = "ok" if ratio <= RATIO_TARGET else "MISSED"
        print(f"{count:>8}  {crane_s:>10.2f}  {stack_s:>16.2f}  {ratio:>6.2f}  {verdict}")


if __name__ == "__main__":
    main()
