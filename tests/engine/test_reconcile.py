"""The reconciler and steps whose worker died: resumed up to the attempt limit, then failed with a reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from crane.models import Target
from orchestrator import engine
from orchestrator.models import Deployment, Event, Step
from orchestrator.services import deployment_create
from tests.engine.conftest import WEB_TEMPLATE


def _as_left_by_a_dead_worker(deployment: Deployment, *, attempts: int) -> Step:
    """The state a worker killed in the middle of the first step leaves behind: running, lease run out."""
    step = Step.objects.get(deployment=deployment, key="network")
    Step.objects.filter(pk=step.pk).update(
        state=Step.State.RUNNING,
        attempts=attempts,
        lease_owner="worker-that-died",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
        started_at=timezone.now() - timedelta(seconds=30),
    )
    return step


def test_a_step_whose_worker_died_is_resumed_and_the_event_names_the_step(
    swarm: Target, queue_name: str, settings: Any
) -> None:
    settings.AGORA_STEP_MAX_ATTEMPTS = 3
    deployment = deployment_create(template=WEB_TEMPLATE.encode(), filename="web.yaml", inputs={}, target=swarm)
    step = _as_left_by_a_dead_worker(deployment, attempts=2)

    counts = engine.reconcile()

    step.refresh_from_db()
    assert (counts["expired"], counts["abandoned"]) == (1, 0)
    assert (step.state, step.lease_owner) == (Step.State.QUEUED, "")
    resumed = Event.objects.get(deployment=deployment, kind="step.resumed")
    assert resumed.step_id == step.pk
    assert "attempt 3 of 3" in resumed.message


def test_a_step_that_keeps_killing_its_worker_fails_the_deployment_instead_of_looping(
    swarm: Target, queue_name: str, settings: Any
) -> None:
    settings.AGORA_STEP_MAX_ATTEMPTS = 3
    deployment = deployment_create(template=WEB_TEMPLATE.encode(), filename="web.yaml", inputs={}, target=swarm)
    step = _as_left_by_a_dead_worker(deployment, attempts=3)

    counts = engine.reconcile()

    step.refresh_from_db()
    deployment.refresh_from_db()
    assert (counts["expired"], counts["abandoned"]) == (0, 1)
    assert step.state == Step.State.FAILED
    assert "stopped answering 3 times" in step.error
    assert deployment.state == Deployment.State.FAILED
    assert "Step network failed" in deployment.error
    assert Event.objects.filter(deployment=deployment, kind="step.failed", step=step).exists()
    assert engine.reconcile()["abandoned"] == 0  # settled: nothing left to do for it
