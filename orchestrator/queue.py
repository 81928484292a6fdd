"""The one door to Redis and RQ. Connections are made per call, never at import time."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job

log = logging.getLogger(__name__)


def redis_connection() -> Redis:
    return Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=10)


def step_queue(connection: Redis | None = None) -> Queue:
    return Queue(settings.AGORA_QUEUE, connection=connection or redis_connection())


def job_id(step_id: int) -> str:
    return f"agora-step-{step_id}"


def enqueue_steps(step_ids: Iterable[int]) -> None:
    """Puts the steps' jobs on the queue. A Redis failure is logged, not raised: the reconciler enqueues them later."""
    ids = list(step_ids)
    if not ids:
        return
    try:
        queue = step_queue()
        for step_id in ids:
            queue.enqueue_call(
                "orchestrator.jobs.run_step",
                args=(step_id,),
                job_id=job_id(step_id),
                # The step's own timeouts bound it; RQ's default (180 s) would kill a long image build.
                timeout=24 * 3600,
                result_ttl=60,
                failure_ttl=24 * 3600,
            )
    except RedisError as exc:
        log.warning("Could not enqueue steps %s (%s); the reconciler will retry.", ids, exc)


def jobs_waiting(step_ids: Iterable[int]) -> set[int]:
    """The steps whose job Redis still holds (queued or started)."""
    connection = redis_connection()
    found = set()
    for step_id in step_ids:
        try:
            job = Job.fetch(job_id(step_id), connection=connection)
        except Exception:  # noqa: S112 - rq raises NoSuchJobError or a deserialisation error: both mean "gone"
            continue
        if job.get_status(refresh=False) in ("queued", "started", "deferred", "scheduled"):
            found.add(step_id)
    return found
