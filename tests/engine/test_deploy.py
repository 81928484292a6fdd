"""Deployments end to end on the real Docker engine (swarm), Redis and PostgreSQL."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest

from config.errors import ValidationFailed
from crane import driver
from crane.models import Target
from orchestrator.models import Deployment, Event, Step
from orchestrator.services import deployment_create, deployment_undeploy
from tests.engine.conftest import WEB_TEMPLATE, drive, needs_swarm

pytestmark = [pytest.mark.docker, needs_swarm]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - a URL of our own deployment
        return str(answer.read().decode())


def test_template_deploys_answers_on_its_output_url_and_undeploys_leaving_nothing(
    swarm: Target, queue_name: str, cleanup: list[str], settings: Any
) -> None:
    settings.AGORA_WAIT_HEALTHY_SECONDS = 60
    deployment = deployment_create(
        template=WEB_TEMPLATE.encode(), filename="web.yaml", inputs={"greeting": "bon dia"}, target=swarm
    )
    cleanup.append(deployment.pk)
    deployment = drive(deployment, {Deployment.State.RUNNING, Deployment.State.FAILED})
    assert deployment.state == Deployment.State.RUNNING, deployment.error
    url = deployment.outputs["url"]
    assert url.startswith("http://127.0.0.1:")
    assert fetch(url).strip() == "bon dia"
    steps = Step.objects.filter(deployment=deployment)
    assert {s.state for s in steps} == {Step.State.DONE}
    assert all(s.attempts == 1 for s in steps)
    kinds = list(Event.objects.filter(deployment=deployment).values_list("kind", flat=True))
    assert kinds[0] == "deployment.created" and kinds[-1] == "deployment.running"

    deployment = deployment_undeploy(deployment=deployment)
    deployment = drive(deployment, {Deployment.State.REMOVED, Deployment.State.FAILED})
    assert deployment.state == Deployment.State.REMOVED, deployment.error
    assert driver.list_objects(swarm, deployment.pk).empty


def test_invalid_inputs_are_refused_and_nothing_is_created(swarm: Target, queue_name: str) -> None:
    template = WEB_TEMPLATE.replace(
        "      default: hello\n", "      default: hello\n      constraints:\n        - max_length: 5\n"
    )
    with pytest.raises(ValidationFailed) as caught:
        deployment_create(
            template=template.encode(), filename="web.yaml", inputs={"greeting": "much too long"}, target=swarm
        )
    assert "at most 5 characters" in caught.value.details["greeting"]
    assert not Deployment.objects.exists()


def test_a_failing_step_fails_the_deployment_with_its_reason_and_retry_resumes_it(
    swarm: Target, queue_name: str, cleanup: list[str], settings: Any
) -> None:
    settings.AGORA_WAIT_HEALTHY_SECONDS = 5
    broken = WEB_TEMPLATE.replace("image: agora/busybox:latest", "image: agora/does-not-exist:1.0")
    deployment = deployment_create(template=broken.encode(), filename="web.yaml", inputs={}, target=swarm)
    cleanup.append(deployment.pk)
    deployment = drive(deployment, {Deployment.State.RUNNING, Deployment.State.FAILED})
    assert deployment.state == Deployment.State.FAILED
    assert "web.image" in deployment.error
    failed = Step.objects.get(deployment=deployment, state=Step.State.FAILED)
    assert failed.key == "web.image"
    assert "agora/does-not-exist" in failed.error
    assert Step.objects.filter(deployment=deployment, key="web.service", state=Step.State.PENDING).exists()
