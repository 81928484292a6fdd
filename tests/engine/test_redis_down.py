"""Redis down: deploying still works and nothing is lost; the reconciler enqueues the work once Redis answers."""

from __future__ import annotations

from typing import Any

from crane.models import Target
from orchestrator import engine
from orchestrator.models import Deployment, Step
from orchestrator.queue import job_id, step_queue
from orchestrator.services import deployment_create
from tests.engine.conftest import WEB_TEMPLATE


def test_steps_queued_while_redis_is_down_are_enqueued_once_it_answers(
    swarm: Target, queue_name: str, settings: Any
) -> None:
    redis_url = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: Redis is "down"
    deployment = deployment_create(template=WEB_TEMPLATE.encode(), filename="web.yaml", inputs={}, target=swarm)
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.DEPLOYING
    queued = Step.objects.get(deployment=deployment, state=Step.State.QUEUED, key="network")
    assert queued.queued_at is not None
    Step.objects.filter(pk=queued.pk).update(queued_at=queued.queued_at - engine.QUEUE_GRACE * 2)
    engine.reconcile()  # still down: the reconciler gets nowhere, without an error, and loses nothing
    assert Step.objects.get(pk=queued.pk).state == Step.State.QUEUED

    settings.REDIS_URL = redis_url
    counts = engine.reconcile()
    assert counts["requeued"] >= 1
    assert job_id(queued.pk) in step_queue().job_ids
