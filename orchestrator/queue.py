"""The one door to Redis and RQ. Connections are made per call, never at import time."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

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
    """The steps whose job is on the queue, for a worker to take.

    A job a worker has already taken ("started" in RQ) does not count: a live worker claims the
    step at once, so a step still queued whose job was taken belongs to a worker that died between
    the two, and RQ keeps such a job "started" for as long as its timeout (a day). Enqueueing the
    step again is safe: only one run can claim it.
    """
    wanted = {job_id(step_id): step_id for step_id in step_ids}
    if not wanted:
        return set()
    on_queue = set(step_queue().get_job_ids())
    return {step_id for name, step_id in wanted.items() if name in on_queue}
