"""Schemathesis against Agora's API, as a subscriber: does every answer match the schema at /api/schema/?

    .venv/bin/python bench/api_fuzz.py [--max-examples 10] [--max-time 90] [--seed 1] [--workers 1] [--keep DIR]

The bench fills a scratch PostgreSQL database of its own (bench_api_fuzz, or the database named by
BENCH_DATABASE_URL; created and migrated at start, dropped at the end) with `seed_demo` (alice, bob,
charlie, three published services), serves it with `manage.py runserver` on 127.0.0.1 only (a free port,
or --port), and runs schemathesis's CLI (`st run`) on http://127.0.0.1:PORT/api/schema/ with bob's API
token, every check (`--checks all`), every phase, at most MAX_EXAMPLES cases per operation and phase, for
MAX_TIME seconds (schemathesis keeps fuzzing until the time is spent). It prints the operations tested,
the cases generated, the failures by check with their operations, and the server errors the server
logged (path and exception). Schemathesis's own report, with a curl command reproducing each failure,
and the server's log stay in the run directory it names (--keep, or a new temporary one).

One worker by default: with two, Hypothesis (on Python 3.11) sometimes fails inside `ast.parse` with
"AST constructor recursion depth mismatch", a runtime error of the fuzzer, not of Agora.

Deployments: bob may subscribe (the demo's version ids and his organization can be guessed), and every
subscription creates a deployment. Its steps go to a queue of the bench's own (AGORA_QUEUE) that no worker
reads, so nothing reaches Docker; at the end the queue is deleted and whatever Docker holds under the label
agora.deployment=<id> of every deployment the run created is removed (the bench says how many there
were). Media files go to a temporary AGORA_DATA_DIR, removed at the end.

Exit status: 0 when schemathesis found no failure, 1 otherwise.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_api_fuzz")
DATA_DIR = tempfile.mkdtemp(prefix="agora-bench-fuzz-")
QUEUE = f"agora-bench-fuzz-{uuid.uuid4().hex[:8]}"
# LOG_LEVEL: the server's log keeps its errors (what the bench reads), without a line per request.
os.environ.update(DATABASE_URL=DATABASE_URL, AGORA_DATA_DIR=DATA_DIR, AGORA_QUEUE=QUEUE, LOG_LEVEL="WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from bench.scratch import scratch_database  # noqa: E402
from crane import driver  # noqa: E402
from orchestrator.models import Deployment  # noqa: E402
from orchestrator.queue import redis_connection, step_queue  # noqa: E402

SUBSCRIBER = "bob"
ST = Path(sys.executable).with_name("st")


@dataclass
class Summary:
    """What a run found, from schemathesis's JSON report and the server's log."""

    operations: int
    tested: int
    cases: int
    cases_failing: int
    failures: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    running_time: float
    server_errors: Counter[str] = field(default_factory=Counter)
    reproductions: list[str] = field(default_factory=list)
    deployments: int = 0

    @classmethod
    def read(cls, report: Path, server_log: Path, terminal: Path) -> Summary:
        data = json.loads(report.read_text())
        operations = data["operations"] or {}
        summary = cls(
            operations=operations.get("selected", 0),
            tested=operations.get("tested", 0),
            cases=data["test_cases"]["generated"],
            cases_failing=data["test_cases"]["with_failures"],
            failures=data["failures"],
            errors=data["errors"],
            running_time=data["running_time"],
        )
        summary.server_errors = server_errors(server_log.read_text(errors="replace"))
        summary.reproductions = server_error_requests(terminal.read_text(errors="replace"))
        return summary

    def print(self) -> None:
        print(f"operations: {self.tested} tested of {self.operations}")
        print(f"cases: {self.cases} generated, {self.cases_failing} with failures, in {self.running_time:.0f} s")
        by_check = Counter[str]()
        for failure in self.failures:
            by_check[failure["type"]] += failure["count"]
        print(f"failures by check: {dict(by_check) or 'none'}")
        for failure in self.failures:
            print(f"  {failure['type']}: {failure['title']} x{failure['count']} in {', '.join(failure['operations'])}")
        for error in self.errors:
            print(f"  error: {error['title']} x{error['count']}")
        print(f"server errors (5xx with a traceback): {sum(self.server_errors.values()) or 'none'}")
        for where, count in self.server_errors.most_common():
            print(f"  {where} x{count}")
        for curl in self.reproductions:
            print(f"  reproduce: {curl}")
        print(f"deployments created by the run (never deployed: no worker): {self.deployments}")


_ERROR = re.compile(r"^Internal Server Error: (?P<path>\S+)$")
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(Error|Exception)\b.*)$")


def server_errors(log: str) -> Counter[str]:
    """`Internal Server Error: <path>` lines of Django's log, each with the last exception line after it."""
    found = Counter[str]()
    path: str | None = None
    exception = ""
    for line in log.splitlines():
        started = _ERROR.match(line)
        if started:
            if path is not None:
                found[f"{path}: {exception[:160]}"] += 1
            path, exception = re.sub(r"/\d+/", "/{id}/", started["path"]), ""
        elif path is not None and _EXCEPTION.match(line):
            exception = line
    if path is not None:
        found[f"{path}: {exception[:160]}"] += 1
    return found


def server_error_requests(terminal: str) -> list[str]:
    """The curl command schemathesis prints for each case that got a 5xx (its test cases are numbered blocks)."""
    found = []
    for block in re.split(r"^\d+\. Test Case ID: ", terminal, flags=re.MULTILINE)[1:]:
        curl = re.search(r"^\s+(curl .+)$", block, flags=re.MULTILINE)
        if "ST101 Server error" in block and curl:
            found.append(curl[1])
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def server(port: int, log: Path) -> Iterator[str]:
    """`manage.py runserver` on 127.0.0.1 only, on the scratch database; stopped at the end."""
    origin = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
            cwd=REPO,
            env=os.environ.copy(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{origin}/api/schema/", timeout=5) as answer:  # noqa: S310 (127.0.0.1)
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {log}")
            time.sleep(0.3)
        yield origin
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def fuzz(origin: str, token: str, args: argparse.Namespace, run_dir: Path) -> Path:
    """Runs `st run`; its terminal report goes to run_dir/schemathesis.txt, its JSON verdict is returned."""
    report = run_dir / "schemathesis.json"
    command = [
        str(ST),
        "run",
        f"{origin}/api/schema/",
        "--checks",
        "all",
        "--header",
        f"Authorization: Token {token}",
        "--max-examples",
        str(args.max_examples),
        "--max-time",
        str(args.max_time),
        "--workers",
        str(args.workers),
        "--seed",
        str(args.seed),
        "--request-timeout",
        "30",
        "--generation-database",
        "none",  # nothing written into the repository (.hypothesis/)
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--report-dir",
        str(run_dir),
        "--no-color",
    ]
    with (run_dir / "schemathesis.txt").open("wb") as out:
        subprocess.run(command, cwd=run_dir, stdout=out, stderr=subprocess.STDOUT, check=False)
    if not report.exists():
        raise SystemExit(f"schemathesis wrote no report; see {run_dir / 'schemathesis.txt'}")
    return report


def remove_what_deployments_left() -> int:
    """Docker objects of the run's deployments (none are expected: no worker ran), then the queue."""
    deployments = list(Deployment.objects.select_related("target"))
    for deployment in deployments:
        try:
            driver.remove_deployment(deployment.target, deployment.pk, timeout=60)
        except Exception as exc:
            print(f"could not remove deployment {deployment.pk} ({exc}); remove it by hand", file=sys.stderr)
    queue = step_queue(redis_connection())
    queue.empty()
    queue.delete(delete_jobs=True)
    return len(deployments)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=10, help="cases per operation and phase")
    parser.add_argument("--max-time", type=int, default=90, help="seconds for the whole run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, default=0, help="default: a free one")
    parser.add_argument("--keep", type=Path, help="a directory to keep the run's reports and logs in")
    args = parser.parse_args()
    run_dir = args.keep or Path(tempfile.mkdtemp(prefix="agora-api-fuzz-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        with scratch_database(DATABASE_URL):
            logging.disable(logging.INFO)  # the demo's audit lines
            call_command("seed_demo", stdout=io.StringIO())
            logging.disable(logging.NOTSET)
            token = Token.objects.get_or_create(user=User.objects.get(username=SUBSCRIBER))[0].key
            try:
                with server(args.port or free_port(), run_dir / "server.log") as origin:
                    report = fuzz(origin, token, args, run_dir)
            finally:
                deployments = remove_what_deployments_left()
    finally:
        shutil.rmtree(DATA_DIR, ignore_errors=True)
    summary = Summary.read(report, run_dir / "server.log", run_dir / "schemathesis.txt")
    summary.deployments = deployments
    print(f"schemathesis on Agora's API as {SUBSCRIBER}, {args.max_examples} examples per operation at most")
    summary.print()
    print(f"in {time.monotonic() - started:.0f} s in all; reports and logs in {run_dir}")
    return 1 if summary.failures or summary.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
