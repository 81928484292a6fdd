"""`manage.py monitoring metrics|logs`: the operators' view at a shell."""

from __future__ import annotations

import datetime
import json
import os
import queue
import subprocess
import sys
import threading
import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from monitoring.store import Line, Sample, get_store
from orchestrator.models import Deployment
from orchestrator.services import deployment_create
from tests.conftest import DOCKER_TEMPLATE

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def deployment(db: None) -> Deployment:
    return deployment_create(template=DOCKER_TEMPLATE.encode(), filename="t.yaml", inputs={})


def run(*args: str) -> str:
    out = StringIO()
    call_command("monitoring", *args, stdout=out)
    return out.getvalue()


def test_metrics_print_the_latest_reading_per_node(deployment: Deployment) -> None:
    get_store().write_samples(
        [
            Sample(NOW - datetime.timedelta(seconds=15), deployment.pk, "web", "a", cpu_percent=5.0),
            Sample(NOW, deployment.pk, "web", "a", cpu_percent=12.5, memory_bytes=3 * 1024 * 1024),
            Sample(NOW, deployment.pk, "web", "b", cpu_percent=7.5, memory_bytes=1024 * 1024),
            Sample(NOW, deployment.pk, "db", "c", cpu_percent=1.0, restarts=2),
        ]
    )

    table = run("metrics", deployment.pk)
    data = json.loads(run("metrics", deployment.pk, "--json"))

    assert "web" in table and "20.0" in table and "4.0 MiB" in table
    assert data["id"] == deployment.pk and data["health"] == "unknown"
    assert data["nodes"]["web"]["cpu_percent"] == 20.0  # both containers of the newest round, added up
    assert data["nodes"]["db"]["restarts"] == 2


def test_metrics_of_an_unknown_deployment_is_a_clear_error(db: None) -> None:
    with pytest.raises(CommandError, match="No deployment 'dnothere'"):
        run("metrics", "dnothere")


def test_logs_print_oldest_first_and_search(deployment: Deployment) -> None:
    get_store().write_lines(
        [
            Line(NOW - datetime.timedelta(seconds=2), "GET /index.html 200", deployment.pk, "web", level="info"),
            Line(NOW - datetime.timedelta(seconds=1), "GET /missing 404", deployment.pk, "web", level="warning"),
            Line(NOW, "checkpoint complete", deployment.pk, "db", level="info"),
        ]
    )

    lines = run("logs", deployment.pk, "--node", "web").splitlines()
    assert [line.split(" ", 4)[-1] for line in lines] == ["GET /index.html 200", "GET /missing 404"]
    assert run("logs", deployment.pk, "--search", "missing").count("\n") == 1
    assert "WARNING" in run("logs", deployment.pk, "--level", "warning")


def test_logs_follow_prints_new_lines_as_they_are_stored(transactional_db: None, settings: Any) -> None:
    deployment = deployment_create(template=DOCKER_TEMPLATE.encode(), filename="t.yaml", inputs={})
    get_store().write_lines([Line(NOW, "before following", deployment.pk, "web")])
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
    }
    follower = subprocess.Popen(
        [sys.executable, "manage.py", "monitoring", "logs", deployment.pk, "--node", "web", "--follow"],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert "before following" in _read_until(follower, "before following")
        later = timezone.now()
        get_store().write_lines(
            [Line(later, "first new line", deployment.pk, "web"), Line(later, "second new line", deployment.pk, "web")]
        )
        seen = _read_until(follower, "second new line")
        assert seen.count("first new line") == 1 and "before following" not in seen
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def _read_until(process: subprocess.Popen[str], text: str, timeout: float = 20.0) -> str:
    """Lines the process prints until one holds `text` (a thread reads, so buffered lines are not missed)."""
    assert process.stdout is not None
    if not hasattr(process, "lines"):
        process.lines = queue.Queue()  # type: ignore[attr-defined]
        stdout = process.stdout
        threading.Thread(target=lambda: [process.lines.put(line) for line in stdout], daemon=True).start()  # type: ignore[attr-defined]
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen:
        try:
            seen += process.lines.get(timeout=max(0.1, deadline - time.monotonic()))  # type: ignore[attr-defined]
        except queue.Empty:
            raise AssertionError(f"{text!r} not printed; got {seen!r}") from None
    return seen
