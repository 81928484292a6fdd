"""Faults for the crash-safety tests: real worker processes to kill, a Redis to restart, dockerd to restart.

Run as `python -m tests.engine.faults`, this is `manage.py worker` with one fault armed by
AGORA_FAULT, so that a test can kill the worker at a moment too short to hit by polling:

    pause-after:<step key>   the step did its work (its Docker objects exist) but the worker
                             stalls before recording it done (its lease is still renewed)
    pause-before:<step key>  the worker took the step's job from Redis but stalls before
                             claiming the step, which is still "queued" in the database

The worker creates the file AGORA_FAULT_MARK when it stalls, then sleeps until it is killed.
Nothing here is imported by Agora itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PREPARE_HOST = REPO / "scripts" / "prepare-host.sh"
DOCKER_PIDFILE = Path("/var/run/docker.pid")


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.1) -> Any:
    """Polls check() until it returns something true, and returns that; fails saying what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(every)


# --- worker processes ----------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    mark: Path | None = None

    @property
    def identity(self) -> str:
        """The lease owner its steps show (orchestrator.jobs.worker_identity)."""
        return f"{socket.gethostname()}:{self.process.pid}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler, no cleanup, as when the machine or the OOM killer takes it."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stalled(self) -> bool:
        return self.mark is not None and self.mark.exists()

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Workers:
    """Starts `manage.py worker` processes with the test's environment; kills every one it started."""

    env: Mapping[str, str]
    folder: Path
    started: list[WorkerProcess] = field(default_factory=list)

    def start(self, *, fault: str = "") -> WorkerProcess:
        name = f"{self.env['AGORA_QUEUE']}-w{len(self.started) + 1}"
        log = self.folder / f"{name}.log"
        env = dict(self.env)
        mark = None
        if fault:
            command = [sys.executable, "-m", "tests.engine.faults", "--name", name]
            mark = self.folder / f"{name}.stalled"
            env.update(AGORA_FAULT=fault, AGORA_FAULT_MARK=str(mark))
        else:
            command = [sys.executable, "manage.py", "worker", "--name", name]
        with log.open("wb") as out:
            process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        worker = WorkerProcess(name, process, log, mark)
        self.started.append(worker)
        return worker

    def kill_all(self) -> None:
        for worker in self.started:
            with suppress(subprocess.TimeoutExpired):  # SIGKILL is not refused; a zombie is no reason to stop
                worker.kill()

    def report(self) -> str:
        return "\n".join(f"--- {w.name} (exit {w.process.poll()}):\n{w.tail()}" for w in self.started)


# --- a Redis of the tests' own -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RedisServer:
    """A throwaway redis-server, so that restarting it disturbs nobody else's queues."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(self.answers, timeout=10, what=f"redis-server on port {self.port} answers")

    def answers(self) -> bool:
        from redis import Redis
        from redis.exceptions import RedisError

        try:
            return bool(Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except RedisError:
            return False

    def stop(self) -> None:
        """Like `redis-cli shutdown nosave`: every job it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


# --- dockerd -------------------------------------------------------------------------------------


def docker_answers(*, swarm: bool = False) -> bool:
    import docker  # type: ignore[import-untyped]

    from crane import conf

    try:
        client = docker.DockerClient(base_url=conf.local_endpoint(), version="auto", timeout=3)
    except Exception:
        return False
    try:
        info = client.info()
        state = (info.get("Swarm") or {}).get("LocalNodeState")
        return not swarm or state == "active"
    except Exception:
        return False
    finally:
        client.close()


def _dockerd_pid() -> int | None:
    try:
        pid = int(DOCKER_PIDFILE.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def stop_dockerd() -> None:
    """SIGTERM to the daemon, as `pkill dockerd` does, and wait until it has exited."""
    pid = _dockerd_pid()
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=60, what=f"dockerd (pid {pid}) exits", every=0.2)


def start_dockerd() -> None:
    """Starts dockerd the one way this machine does (scripts/prepare-host.sh), in a session of its own."""
    subprocess.run(
        ["bash", str(PREPARE_HOST)],
        check=True,
        capture_output=True,
        env={**os.environ, "AGORA_SKIP_DEBIAN_IMAGE": "1"},
        start_new_session=True,
        timeout=120,
    )
    wait_for(lambda: docker_answers(swarm=True), timeout=60, what="dockerd answers as a swarm manager", every=0.5)


@contextmanager
def dockerd_restarted_afterwards() -> Iterator[None]:
    """Whatever happens inside, dockerd runs again afterwards, as an active swarm manager."""
    try:
        yield
    finally:
        if not docker_answers(swarm=True):
            start_dockerd()


# --- the faulty worker ---------------------------------------------------------------------------


def _stall(mark: str) -> None:
    Path(mark).touch()
    while True:
        time.sleep(60)


def arm(fault: str, mark: str) -> None:
    """Patches the worker's code path so that it stalls where `fault` says."""
    from orchestrator import execute, jobs
    from orchestrator.models import Step

    where, _, key = fault.partition(":")
    if where == "pause-after":
        execute_step = execute.execute_step

        def stalling_execute(step: Step) -> dict[str, Any]:
            result = execute_step(step)
            if step.key == key:
                _stall(mark)
            return result

        execute.execute_step = stalling_execute  # engine.run_step looks it up at each call
    elif where == "pause-before":
        run_step = jobs.run_step

        def stalling_run_step(step_id: int) -> None:
            if Step.objects.filter(pk=step_id, key=key).exists():
                _stall(mark)
            run_step(step_id)

        jobs.run_step = stalling_run_step  # RQ imports the job's function by name
    else:
        raise SystemExit(f"unknown fault {fault!r}; see tests/engine/faults.py")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    arm(os.environ["AGORA_FAULT"], os.environ["AGORA_FAULT_MARK"])
    call_command("worker", *sys.argv[1:])


if __name__ == "__main__":
    main()
