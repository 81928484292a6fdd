"""The deployment commands an operator uses: tosca plan, deploy, deployments, undeploy."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from crane.models import Target
from orchestrator.models import Deployment
from tests.engine.conftest import WEB_TEMPLATE, drive, needs_swarm

DATA = Path(__file__).resolve().parent.parent / "data" / "tosca"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_tosca_plan_prints_levels_without_touching_anything(db: None) -> None:
    text = run("tosca", "plan", str(DATA / "single/agora_web.yaml"), "--input", "db_password=a-long-password-x")
    assert text.startswith("Level 1 (5 steps in parallel):")
    assert "web.wait" in text and "Outputs once running: url" in text
    assert not Deployment.objects.exists()


def test_tosca_plan_refuses_bad_inputs_with_their_message(db: None) -> None:
    with pytest.raises(CommandError, match="db_password is required"):
        run("tosca", "plan", str(DATA / "single/agora_web.yaml"))


@pytest.mark.docker
@needs_swarm
def test_deploy_deployments_and_undeploy(
    swarm: Target, queue_name: str, cleanup: list[str], settings: Any, tmp_path: Path
) -> None:
    settings.AGORA_WAIT_HEALTHY_SECONDS = 60
    path = tmp_path / "web.yaml"
    path.write_text(WEB_TEMPLATE)
    created = json.loads(run("deploy", str(path), "--input", "greeting=hola", "--target", swarm.name, "--json"))
    cleanup.append(created["id"])
    assert created["state"] == "pending" and created["steps"][0]["key"] == "network"
    drive(Deployment.objects.get(pk=created["id"]), {Deployment.State.RUNNING, Deployment.State.FAILED})
    shown = json.loads(run("deployments", created["id"], "--json"))
    assert set(shown) >= {"id", "state", "outputs", "steps"}
    assert shown["state"] == "running" and shown["outputs"]["url"].startswith("http://")
    assert created["id"] in run("deployments")
    run("undeploy", created["id"])
    removed = drive(Deployment.objects.get(pk=created["id"]), {Deployment.State.REMOVED, Deployment.State.FAILED})
    assert removed.state == Deployment.State.REMOVED


def test_deploy_refuses_an_unknown_target_and_a_bad_template(db: None, tmp_path: Path) -> None:
    path = tmp_path / "web.yaml"
    path.write_text(WEB_TEMPLATE)
    with pytest.raises(CommandError, match="No target named 'mars'"):
        run("deploy", str(path), "--target", "mars")
    path.write_text("tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template: [1]\n")
    with pytest.raises(CommandError, match="cannot be deployed"):
        run("deploy", str(path))
