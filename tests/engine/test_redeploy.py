"""Deploying again: what drifted comes back, a removed deployment returns, a busy one is refused."""

from __future__ import annotations

from typing import Any

import docker  # type: ignore[import-untyped]
import pytest

from config.errors import InvalidState
from crane import driver, names
from crane.models import Target
from orchestrator.models import Deployment, Step
from orchestrator.services import deployment_create, deployment_redeploy, deployment_undeploy
from tests.engine.conftest import WEB_TEMPLATE, drive, needs_swarm
from tests.engine.test_deploy import fetch

pytestmark = [pytest.mark.docker, needs_swarm]

SETTLED = {Deployment.State.RUNNING, Deployment.State.FAILED, Deployment.State.REMOVED}


def test_deploying_again_brings_back_a_service_removed_by_hand_and_a_removed_deployment(
    swarm: Target, queue_name: str, cleanup: list[str], settings: Any
) -> None:
    settings.AGORA_WAIT_HEALTHY_SECONDS = 60
    deployment = deployment_create(template=WEB_TEMPLATE.encode(), filename="web.yaml", inputs={}, target=swarm)
    cleanup.append(deployment.pk)
    deployment = drive(deployment, SETTLED)
    assert deployment.state == Deployment.State.RUNNING, deployment.error
    docker.from_env().services.get(names.service(deployment.pk, "web")).remove()  # drift: someone removed it

    deployment = deployment_redeploy(deployment=deployment)
    with pytest.raises(InvalidState, match="wait for it to finish"):  # in progress: not started twice
        deployment_redeploy(deployment=deployment)
    deployment = drive(deployment, SETTLED)

    assert deployment.state == Deployment.State.RUNNING, deployment.error
    assert fetch(deployment.outputs["url"]).strip() == "hello"
    current = Step.objects.filter(deployment=deployment, generation=deployment.generation)
    assert current.count() == Step.objects.filter(deployment=deployment, generation=1).count()
    assert {s.state for s in current} == {Step.State.DONE}

    deployment = drive(deployment_undeploy(deployment=deployment), SETTLED)
    assert deployment.state == Deployment.State.REMOVED and driver.list_objects(swarm, deployment.pk).empty
    deployment = drive(deployment_redeploy(deployment=deployment), SETTLED)
    assert deployment.state == Deployment.State.RUNNING, deployment.error
    assert fetch(deployment.outputs["url"]).strip() == "hello"
