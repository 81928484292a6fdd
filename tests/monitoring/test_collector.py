"""The collector against the real Docker daemon and PostgreSQL: metrics of a deployed service, its
health, its log lines found by search, and a collector restart that neither loses nor repeats a line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from crane.models import Target
from monitoring.collector import LogFollowers, RoundMemory, collect_round, line_level
from monitoring.models import CollectorHeartbeat, DeploymentHealth, LogCursor, TargetHealth
from monitoring.store import LogQuery, get_store
from orchestrator.models import Deployment
from tests.crane.conftest import web
from tests.monitoring import collector_fixtures
from tests.monitoring.collector_fixtures import CuttableProxy, Deployments, eventually, needs_swarm, service

# The fixtures this module uses, found by pytest under these names.
engine = collector_fixtures.engine
swarm = collector_fixtures.swarm
monitored = collector_fixtures.monitored
followers = collector_fixtures.followers

pytestmark = pytest.mark.docker


def _all_lines(deployment_id: str, text: str = "") -> list[str]:
    page = get_store().search_lines(LogQuery(deployment_id=deployment_id, text=text, limit=1000))
    return [line.message for line in page.lines]


def _more_than(deployment_id: str, count: int, prefix: str = "tick=") -> Callable[[], bool]:
    return lambda: len(_all_lines(deployment_id, prefix)) > count


@needs_swarm
def test_metrics_of_a_deployed_service_appear_within_two_rounds(swarm: Target, monitored: Deployments) -> None:
    deployment = monitored.create(swarm, web())
    memory = RoundMemory()
    store = get_store()

    def healthy() -> bool:
        collect_round(swarm, memory=memory, interval=1)
        return DeploymentHealth.objects.get(deployment=deployment).health == DeploymentHealth.Health.HEALTHY

    eventually(healthy, "the service becomes healthy", timeout=60)
    collect_round(swarm, memory=memory, interval=1)  # a second round of the running container: CPU from a delta

    latest = store.latest(deployment.pk)
    assert set(latest) == {"web"}
    sample = latest["web"]
    assert sample.memory_bytes and sample.memory_bytes > 0
    assert sample.memory_limit == 32 * 1024 * 1024
    assert sample.cpu_percent is not None and 0 <= sample.cpu_percent <= 25.0 + 1  # limited to a quarter CPU
    assert sample.network_rx_bytes is not None and sample.block_read_bytes is not None
    assert sample.restarts == 0
    health = DeploymentHealth.objects.get(deployment=deployment)
    assert health.nodes["web"]["running"] == 1 and health.nodes["web"]["desired"] == 1
    assert CollectorHeartbeat.objects.get(target=swarm).containers == 1
    assert TargetHealth.objects.filter(target=swarm, reachable=True).exists()
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.RUNNING


def test_only_the_targets_own_containers_are_read(engine: Target, monitored: Deployments) -> None:
    other = Target.objects.create(
        name=f"other-{uuid.uuid4().hex[:6]}", public_host="127.0.0.1", endpoint=engine.endpoint, mode=engine.mode
    )
    mine = monitored.create(engine, service("app", "sleep 600"))
    theirs = monitored.create(other, service("app", "sleep 600"))
    report = collect_round(engine, interval=1)
    assert {c.deployment for c in report.containers} == {mine.pk}
    assert not get_store().latest(theirs.pk)
    assert report.health == {mine.pk: DeploymentHealth.Health.HEALTHY}


def test_a_line_printed_by_the_container_is_found_by_log_search(
    engine: Target, monitored: Deployments, followers: list[LogFollowers]
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    deployment = monitored.create(
        engine, service("app", f'echo "hello {marker}"; echo "ERROR {marker} on stderr" >&2; exec sleep 600')
    )
    follower = LogFollowers()
    followers.append(follower)
    report = collect_round(engine, interval=1)
    follower.sync(engine, report.containers)

    def found() -> list[str]:
        follower.flush()
        return _all_lines(deployment.pk, marker) if len(_all_lines(deployment.pk, marker)) == 2 else []

    eventually(found, "both lines stored", timeout=30)
    page = get_store().search_lines(LogQuery(deployment_id=deployment.pk, text=marker, level="error"))
    assert [line.message for line in page.lines] == [f"ERROR {marker} on stderr"]
    assert page.lines[0].stream == "stderr" and page.lines[0].node == "app"
    hello = get_store().search_lines(LogQuery(deployment_id=deployment.pk, text=f"hello {marker}")).lines
    assert [(line.stream, line.level, line.source) for line in hello] == [("stdout", "info", "docker")]


@pytest.mark.parametrize("restarts", [1, 3])
def test_a_collector_restart_neither_loses_nor_repeats_a_line(
    engine: Target, monitored: Deployments, followers: list[LogFollowers], restarts: int
) -> None:
    # 300 numbered lines over about three seconds, on both streams, many in the same second.
    script = (
        'i=0; while [ $i -lt 300 ]; do i=$((i+1)); if [ $((i % 3)) -eq 0 ]; then echo "n=$i" >&2; '
        'else echo "n=$i"; fi; [ $((i % 10)) -eq 0 ] && sleep 0.1; done; exec sleep 600'
    )
    deployment = monitored.create(engine, service("counter", script))
    for _ in range(restarts):
        follower = LogFollowers(flush_seconds=0.2)
        followers.append(follower)
        report = collect_round(engine, interval=1)
        follower.sync(engine, report.containers)
        eventually(lambda: _all_lines(deployment.pk, "n="), "some lines stored", timeout=30, pause=0.05)
        assert follower.stop()  # a collector stopped mid-stream (a SIGTERM does this)

    last = LogFollowers(flush_seconds=0.2)
    followers.append(last)
    report = collect_round(engine, interval=1)
    last.sync(engine, report.containers)

    def complete() -> list[str]:
        last.flush()
        lines = _all_lines(deployment.pk, "n=")
        return lines if any(line == "n=300" for line in lines) else []

    eventually(complete, "all 300 lines stored", timeout=60)
    last.flush()
    numbers = sorted(int(re.sub(r"\D", "", line)) for line in _all_lines(deployment.pk, "n="))
    assert numbers == list(range(1, 301))
    assert LogCursor.objects.filter(deployment_id=deployment.pk).count() == 1


def test_monitor_once_records_a_round_and_reads_the_logs(engine: Target, monitored: Deployments) -> None:
    marker = f"once-{uuid.uuid4().hex}"
    deployment = monitored.create(engine, service("app", f'echo "{marker}"; exec sleep 600'))

    def printed() -> bool:
        call_command("monitor", "--target", engine.name, "--once")
        return bool(_all_lines(deployment.pk, marker))

    eventually(printed, "the line read by --once", timeout=30)
    assert _all_lines(deployment.pk, marker) == [marker]
    assert TargetHealth.objects.filter(target=engine).exists()
    assert get_store().latest(deployment.pk)["app"].memory_bytes


def _monitor_env(port: int | None = None) -> dict[str, str]:
    """The environment of a `manage.py monitor` process on the test database (committed to: transactional_db)."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = "127.0.0.1" if port else db["HOST"] or "127.0.0.1"
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}{password}@{host}:{port or db['PORT'] or 5432}/{db['NAME']}",
        "PYTHONUNBUFFERED": "1",
    }


def _numbers(deployment_id: str, prefix: str) -> list[int]:
    return sorted(int(line.removeprefix(prefix)) for line in _all_lines(deployment_id, prefix))


def test_the_monitor_process_collects_until_sigterm_and_a_new_one_resumes_the_log(
    engine: Target, monitored: Deployments, tmp_path: Path
) -> None:
    env = _monitor_env()
    script = 'i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo "tick=$i"; sleep 0.1; done; exec sleep 600'
    deployment = monitored.create(engine, service("ticker", script))
    command = [sys.executable, "manage.py", "monitor", "--target", engine.name, "--interval", "1"]
    root = Path(__file__).resolve().parents[2]
    for run in range(2):
        output = tmp_path / f"monitor-{run}.log"
        with output.open("wb") as out:
            process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
            try:
                eventually(_more_than(deployment.pk, len(_all_lines(deployment.pk, "tick="))), "new lines", timeout=30)
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=30) == 0, output.read_text()
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        assert "collector stopped" in output.read_text()

    def all_printed() -> bool:
        call_command("monitor", "--target", engine.name, "--once")  # what is left, to the end
        return any(line == "tick=60" for line in _all_lines(deployment.pk, "tick="))

    eventually(all_printed, "the last line stored", timeout=30)
    assert _numbers(deployment.pk, "tick=") == list(range(1, 61))


def test_the_monitor_outlives_a_database_outage_and_loses_no_line(
    engine: Target, monitored: Deployments, tmp_path: Path
) -> None:
    db = connection.settings_dict
    proxy = CuttableProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    script = 'i=0; while [ $i -lt 150 ]; do i=$((i+1)); echo "beat=$i"; sleep 0.1; done; exec sleep 600'
    deployment = monitored.create(engine, service("beater", script))
    command = [sys.executable, "manage.py", "monitor", "--target", engine.name, "--interval", "1"]
    output = tmp_path / "monitor.log"
    with output.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=Path(__file__).resolve().parents[2], env=_monitor_env(proxy.port), stdout=out, stderr=out
        )
        try:
            eventually(_more_than(deployment.pk, 0, "beat="), "first lines stored", timeout=30)
            proxy.cut()
            rounds = CollectorHeartbeat.objects.get(target=engine).last_round_at
            time.sleep(4)  # the container prints on; the collector can store nothing
            assert process.poll() is None, output.read_text()
            stalled = len(_all_lines(deployment.pk, "beat="))
            proxy.restore()
            eventually(_more_than(deployment.pk, stalled, "beat="), "lines stored again", timeout=60)
            eventually(
                lambda: CollectorHeartbeat.objects.get(target=engine).last_round_at > rounds, "rounds again", timeout=60
            )
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0, output.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            proxy.close()
    log = output.read_text()
    assert "cannot use the database" in log or "the database is away" in log  # the outage was seen, and outlived

    def all_printed() -> bool:
        call_command("monitor", "--target", engine.name, "--once")
        return "beat=150" in _all_lines(deployment.pk, "beat=")

    eventually(all_printed, "the last line stored", timeout=30)
    assert _numbers(deployment.pk, "beat=") == list(range(1, 151))


def test_monitor_refuses_an_unknown_target(transactional_db: None) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No such target: nowhere"):
        call_command("monitor", "--target", "nowhere", "--once")


@pytest.mark.parametrize(
    ("message", "stream", "level"),
    [
        ("ERROR: disk full", "stdout", "error"),
        ("2026-01-01 12:00:00 [warn] slow request", "stdout", "warning"),
        ("level=debug msg=tick", "stderr", "debug"),
        ("FATAL could not start", "stdout", "critical"),
        ("INFO:root:started", "stderr", "info"),
        ("GET / 200", "stdout", "info"),
        ("something odd", "stderr", "warning"),
        ("0 errors found", "stdout", "info"),
    ],
)
def test_line_levels(message: str, stream: str, level: str) -> None:
    assert line_level(message, stream) == level
