"""The deployment engine: steps move pending → queued → running → done, one database row each.

- `schedule` queues every step whose requirements are done, under a lock on the
  deployment's row, so each is enqueued exactly once.
- `run_step` (an RQ job) claims a queued step with a compare-and-set, holds a lease it
  renews while working, and records the outcome only if it still holds the lease: a
  worker that lost its lease (it stalled, another took over) aborts instead of acting twice.
- `reconcile` (run by every worker at start and every few seconds) gives a step whose
  lease ran out back to the queue, re-enqueues queued steps whose job Redis lost, and
  schedules steps whose retry time has come. Every Docker call is idempotent by Agora's
  names and labels, so running a step again adopts what a killed worker left.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from config.errors import AgoraError, InvalidState
from orchestrator.models import Deployment, Event, Step
from orchestrator.plan import Plan, PlannedStep, StepKind
from orchestrator.queue import enqueue_steps, jobs_waiting
from orchestrator.redact import redactor_for
from orchestrator.signals import deployment_rolled_back

log = logging.getLogger(__name__)

# A queued step whose job Redis does not hold after this long was lost (Redis restarted, enqueue failed).
QUEUE_GRACE = timedelta(seconds=5)


def event(
    deployment: Deployment | str, kind: str, message: str, *, step: Step | None = None, level: str = Event.Level.INFO
) -> None:
    deployment_id = deployment if isinstance(deployment, str) else deployment.pk
    # Whatever the message quotes (a script's output, an error from Docker), no secret is written.
    message = redactor_for(deployment).text(message)
    Event.objects.create(deployment_id=deployment_id, step=step, kind=kind, message=message, level=level)
    logging.getLogger("agora.events").info(
        message, extra={"deployment_id": deployment_id, "kind": kind, "level": str(level)}
    )


def create_steps(deployment: Deployment, plan: Plan, carried: dict[str, Step] | None = None) -> None:
    """The plan's steps as rows of the deployment's current generation; `carried` ones start done with their result."""
    carried = carried or {}
    Step.objects.bulk_create(
        Step(
            deployment=deployment,
            generation=deployment.generation,
            position=position,
            key=planned.key,
            kind=str(planned.kind),
            node=planned.node or "",
            requires=list(planned.requires),
            params=dict(planned.params),
            summary=planned.summary,
            state=Step.State.DONE if planned.key in carried else Step.State.PENDING,
            result=carried[planned.key].result if planned.key in carried else {},
            finished_at=carried[planned.key].finished_at if planned.key in carried else None,
        )
        for position, planned in enumerate(plan.steps)
    )


def current_steps(deployment: Deployment) -> list[Step]:
    return list(deployment.steps.filter(generation=deployment.generation).order_by("position"))


# --- scheduling ----------------------------------------------------------------------------------


def schedule(deployment_id: str) -> None:
    """Queues the steps that can run now; finishes the operation when nothing is left to do."""
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().filter(pk=deployment_id).first()
        if deployment is None or deployment.state not in Deployment.BUSY_STATES:
            return
        steps = current_steps(deployment)
        if deployment.cancel_requested:
            _cancel_waiting(deployment, steps)
            return
        if any(s.state == Step.State.FAILED for s in steps):
            return  # the failure already ended the operation; retry() resumes it
        if all(s.state == Step.State.DONE for s in steps):
            _finish(deployment, steps)
            return
        done = {s.key for s in steps if s.state == Step.State.DONE}
        now = timezone.now()
        ready = [
            s
            for s in steps
            if s.state == Step.State.PENDING
            and all(r in done for r in s.requires)
            and (s.not_before is None or s.not_before <= now)
        ]
        if ready:
            Step.objects.filter(pk__in=[s.pk for s in ready], state=Step.State.PENDING).update(
                state=Step.State.QUEUED, queued_at=now
            )
        if deployment.state == Deployment.State.PENDING:
            deployment.state = Deployment.State.DEPLOYING
            deployment.save(update_fields=["state", "updated_at"])
        ids = [s.pk for s in ready]
        transaction.on_commit(lambda: enqueue_steps(ids))


def _cancel_waiting(deployment: Deployment, steps: list[Step]) -> None:
    waiting = [s.pk for s in steps if s.state in (Step.State.PENDING, Step.State.QUEUED)]
    Step.objects.filter(pk__in=waiting).update(state=Step.State.CANCELLED, finished_at=timezone.now())
    if any(s.state == Step.State.RUNNING for s in steps):
        return  # a running step ends on its own; the last one to end calls schedule again
    deployment.state = Deployment.State.FAILED
    deployment.error = "Cancelled on request; what was created stays until the deployment is retried or removed."
    deployment.cancel_requested = False
    deployment.finished_at = timezone.now()
    deployment.save(update_fields=["state", "error", "cancel_requested", "finished_at", "updated_at"])
    event(deployment, "deployment.cancelled", "The deployment was cancelled.", level=Event.Level.WARNING)


def _finish(deployment: Deployment, steps: list[Step]) -> None:
    from orchestrator.execute import evaluate_outputs

    now = timezone.now()
    if deployment.operation == "undeploy":
        deployment.state = Deployment.State.REMOVED
        deployment.outputs = {}
        message = "Everything the deployment had was removed."
    else:
        try:
            deployment.outputs = evaluate_outputs(deployment, steps)
        except AgoraError as exc:
            deployment.state = Deployment.State.FAILED
            deployment.error = redactor_for(deployment).text(f"The outputs could not be evaluated: {exc.message}")
            deployment.finished_at = now
            deployment.save(update_fields=["state", "error", "finished_at", "updated_at"])
            event(deployment, "deployment.failed", deployment.error, level=Event.Level.ERROR)
            return
        deployment.state = Deployment.State.RUNNING
        if deployment.operation == "rollback":
            # Running again as before the upgrade; the error keeps saying why the upgrade did not happen.
            deployment.finished_at = now
            deployment.save(update_fields=["state", "outputs", "finished_at", "updated_at"])
            event(deployment, "deployment.rolled_back", "The previous version runs again.", level=Event.Level.WARNING)
            return
        deployment.previous = {}
        message = "The deployment is running." + (
            " " + ", ".join(f"{k}: {v}" for k, v in deployment.outputs.items()) if deployment.outputs else ""
        )
    deployment.error = ""
    deployment.finished_at = now
    deployment.save(update_fields=["state", "outputs", "error", "finished_at", "previous", "updated_at"])
    event(deployment, f"deployment.{deployment.state}", message)


# --- running one step ----------------------------------------------------------------------------


def _lease_deadline() -> Any:
    return timezone.now() + timedelta(seconds=settings.AGORA_STEP_LEASE_SECONDS)


def claim(step_id: int, owner: str) -> Step | None:
    """Takes a queued step for this worker; None when another worker has it or it is not runnable."""
    now = timezone.now()
    claimed = Step.objects.filter(pk=step_id, state=Step.State.QUEUED).update(
        state=Step.State.RUNNING,
        lease_owner=owner,
        lease_expires_at=_lease_deadline(),
        started_at=now,
        attempts=F("attempts") + 1,
        error="",
    )
    if not claimed:
        return None
    return Step.objects.select_related("deployment", "deployment__target").get(pk=step_id)


@contextmanager
def lease(step: Step, owner: str) -> Iterator[threading.Event]:
    """Renews the step's lease while the body runs; the event is set if the lease was lost."""
    lost = threading.Event()
    stop = threading.Event()

    def renew() -> None:
        interval = max(1.0, settings.AGORA_STEP_LEASE_SECONDS / 3)
        try:
            while not stop.wait(interval):
                renewed = Step.objects.filter(pk=step.pk, state=Step.State.RUNNING, lease_owner=owner).update(
                    lease_expires_at=_lease_deadline()
                )
                if not renewed:
                    lost.set()
                    return
        finally:
            connection.close()  # this thread's own connection; nothing else would close it

    thread = threading.Thread(target=renew, name=f"lease-{step.pk}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join(timeout=5)


def run_step(step_id: int, owner: str, execute: Callable[[Step], dict[str, Any]] | None = None) -> None:
    """Runs one step to its end (done, retry later, or failed) and schedules what follows."""
    from orchestrator.execute import execute_step

    step = claim(step_id, owner)
    if step is None:
        return
    event(step.deployment_id, "step.started", f"{step.summary} (attempt {step.attempts}).", step=step)
    with lease(step, owner) as lost:
        try:
            result = (execute or execute_step)(step)
        except AgoraError as exc:
            if lost.is_set():
                log.warning("Step %s lost its lease while failing: %s", step.pk, _masked(step, exc.message))
            elif getattr(exc, "transient", False) and step.attempts < settings.AGORA_STEP_MAX_ATTEMPTS:
                _retry_later(step, owner, exc.message)
            else:
                _fail(step, owner, exc.message)
        except Exception as exc:  # a bug: the step fails with a plain sentence; the traceback goes to the log
            log.error("Step %s (%s) crashed:\n%s", step.pk, step.key, _masked(step, traceback.format_exc()))
            _fail(step, owner, f"Agora failed unexpectedly ({type(exc).__name__}); the operators have the details.")
        else:
            if lost.is_set():
                log.warning("Step %s finished after losing its lease; its result is dropped.", step.pk)
            else:
                _complete(step, owner, result)
    schedule(step.deployment_id)


def _masked(step: Step, text: str) -> str:
    return redactor_for(step.deployment_id).text(text)


def _complete(step: Step, owner: str, result: dict[str, Any]) -> None:
    with transaction.atomic():
        updated = Step.objects.filter(pk=step.pk, state=Step.State.RUNNING, lease_owner=owner).update(
            state=Step.State.DONE, result=result, finished_at=timezone.now(), lease_owner="", lease_expires_at=None
        )
        if updated:
            event(step.deployment_id, "step.done", f"{step.summary}: done.", step=step)


def _retry_later(step: Step, owner: str, reason: str) -> None:
    reason = _masked(step, reason)  # kept as the step's error, and told in its event
    delay = min(60, 2**step.attempts)
    with transaction.atomic():
        updated = Step.objects.filter(pk=step.pk, state=Step.State.RUNNING, lease_owner=owner).update(
            state=Step.State.PENDING,
            not_before=timezone.now() + timedelta(seconds=delay),
            error=reason,
            lease_owner="",
            lease_expires_at=None,
        )
        if updated:
            event(
                step.deployment_id,
                "step.retry",
                f"{step.summary}: {reason} Trying again in {delay} s.",
                step=step,
                level=Event.Level.WARNING,
            )


def _fail(step: Step, owner: str, reason: str) -> None:
    reason = _masked(step, reason)  # kept as the step's and the deployment's error, and told in events
    with transaction.atomic():
        updated = Step.objects.filter(pk=step.pk, state=Step.State.RUNNING, lease_owner=owner).update(
            state=Step.State.FAILED, error=reason, finished_at=timezone.now(), lease_owner="", lease_expires_at=None
        )
        if not updated:
            return
        deployment = Deployment.objects.select_for_update().get(pk=step.deployment_id)
        event(deployment, "step.failed", f"{step.summary}: {reason}", step=step, level=Event.Level.ERROR)
        if deployment.operation == "upgrade" and deployment.previous:
            rollback(deployment, f"Step {step.key} failed: {reason}")
            return
        deployment.state = Deployment.State.FAILED
        deployment.error = (
            f"Step {step.key} failed: {reason} Fix the cause, then retry the deployment (it resumes from this step) "
            "or remove it."
        )
        deployment.finished_at = timezone.now()
        deployment.save(update_fields=["state", "error", "finished_at", "updated_at"])


# --- changing a running deployment ---------------------------------------------------------------


def start_generation(deployment: Deployment, plan: Plan, *, operation: str, changed_inputs: set[str]) -> int:
    """Starts a new generation of steps for `plan`, reusing what the last generation already did.

    A step whose kind and params are the same as a done step of the previous generation (and which
    reads no input that changed) is carried over as done with its result, so an upgrade changes only
    what differs; nodes that left the template are removed at the end. Returns the steps left to run.
    Call inside a transaction holding the deployment's row lock.
    """
    previous = {s.key: s for s in current_steps(deployment) if s.state == Step.State.DONE}
    old_plan = Plan.from_dict(deployment.plan) if deployment.plan else Plan(steps=())
    # The last generation's waiting steps must not run once the next one starts (after a failed step,
    # its siblings may still be queued).
    deployment.steps.filter(generation=deployment.generation, state__in=(Step.State.PENDING, Step.State.QUEUED)).update(
        state=Step.State.CANCELLED
    )
    deployment.generation += 1
    new_steps = list(plan.steps)
    new_nodes = {s.node for s in new_steps if s.node}
    leaving = [s for s in old_plan.steps if s.kind is StepKind.SERVICE and s.node and s.node not in new_nodes]
    everything = tuple(s.key for s in new_steps)
    for step in leaving:
        new_steps.append(
            PlannedStep(f"{step.node}.remove", StepKind.REMOVE, step.node, everything, {}, f"remove {step.node}")
        )
    changed: set[str] = set()
    for planned in new_steps:
        before = previous.get(planned.key)
        same = (
            before is not None
            and before.kind == str(planned.kind)
            and before.params == json.loads(json.dumps(dict(planned.params)))
            and not (_inputs_read(planned.params) & changed_inputs)
            and not (set(planned.requires) & changed)
        )
        if not same:
            changed.add(planned.key)
    carried = {key: previous[key] for key in (s.key for s in new_steps) if key not in changed}
    create_steps(deployment, Plan(steps=tuple(new_steps)), carried)
    deployment.plan = plan.to_dict()
    deployment.operation = operation
    deployment.state = Deployment.State.UPDATING
    deployment.error = ""
    deployment.finished_at = None
    deployment.cancel_requested = False
    deployment.save()
    return len(changed)


def _inputs_read(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if set(value) == {"get_input"}:
            name = value["get_input"]
            found.add(str(name[0] if isinstance(name, list) else name))
        for item in value.values():
            found |= _inputs_read(item)
    elif isinstance(value, list):
        for item in value:
            found |= _inputs_read(item)
    return found


def rollback(deployment: Deployment, reason: str) -> None:
    """After a failed upgrade: back to the template, inputs and plan that ran before it."""
    previous = deployment.previous
    deployment.template = base64.b64decode(previous["template"])
    deployment.template_filename = previous["template_filename"]
    deployment.template_sha256 = previous["template_sha256"]
    deployment.inputs = previous["inputs"]
    deployment.secret_inputs = previous["secret_inputs"]
    deployment.previous = {}
    start_generation(deployment, Plan.from_dict(previous["plan"]), operation="rollback", changed_inputs=set())
    deployment.error = f"The upgrade failed and is being rolled back. {reason}"
    deployment.save(update_fields=["error"])
    deployment_rolled_back.send(sender=Deployment, deployment=deployment)
    event(deployment, "deployment.rolling_back", deployment.error, level=Event.Level.WARNING)
    transaction.on_commit(lambda: schedule(deployment.pk))


# --- recovery ------------------------------------------------------------------------------------


def reconcile() -> dict[str, int]:
    """Finds work that no live worker is doing and puts it back on the queue. Safe to run anywhere, any time."""
    now = timezone.now()
    counts = {"expired": 0, "requeued": 0, "scheduled": 0, "abandoned": 0}
    expired = list(Step.objects.filter(state=Step.State.RUNNING, lease_expires_at__lt=now))
    resumed: list[int] = []
    for step in expired:
        if step.attempts >= settings.AGORA_STEP_MAX_ATTEMPTS:
            # Its workers died every time: the step itself may be what kills them (memory, a crash in a
            # library). Failing it lets people see why instead of restarting workers forever.
            _fail(
                step,
                step.lease_owner,
                f"The worker running it stopped answering {step.attempts} times in a row; the step may be what "
                "brings the worker down (memory, a crash). The worker logs have the details.",
            )
            counts["abandoned"] += 1
            continue
        if Step.objects.filter(pk=step.pk, state=Step.State.RUNNING, lease_expires_at__lt=now).update(
            state=Step.State.QUEUED, queued_at=now, lease_owner="", lease_expires_at=None
        ):
            resumed.append(step.pk)
            event(
                step.deployment_id,
                "step.resumed",
                f"The worker running {step.key} stopped answering; resuming the step (attempt {step.attempts + 1} "
                f"of {settings.AGORA_STEP_MAX_ATTEMPTS}).",
                step=step,
                level=Event.Level.WARNING,
            )
    counts["expired"] = len(resumed)
    stale = list(
        Step.objects.filter(
            Q(state=Step.State.QUEUED), Q(queued_at__lt=now - QUEUE_GRACE) | Q(queued_at=None)
        ).values_list("pk", flat=True)
    )
    if stale or resumed:
        try:
            alive = jobs_waiting(stale)
        except Exception as exc:
            log.warning("Reconciler cannot reach Redis: %s", exc)
            return counts
        lost = [s for s in stale if s not in alive] + resumed
        enqueue_steps(lost)
        counts["requeued"] = len(lost)
    busy = Deployment.objects.filter(state__in=Deployment.BUSY_STATES).values_list("pk", flat=True)
    for deployment_id in busy:
        schedule(deployment_id)
        counts["scheduled"] += 1
    return counts


# --- operations people ask for -------------------------------------------------------------------


def retry(deployment: Deployment) -> Deployment:
    """Resumes a failed deployment from its failed step(s)."""
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if locked.state != Deployment.State.FAILED:
            raise InvalidState(f"Deployment {locked.pk} is {locked.state}; only a failed deployment can be retried.")
        Step.objects.filter(
            deployment=locked, generation=locked.generation, state__in=(Step.State.FAILED, Step.State.CANCELLED)
        ).update(state=Step.State.PENDING, attempts=0, not_before=None, error="")
        locked.state = (
            Deployment.State.UPDATING
            if locked.operation == "upgrade"
            else (Deployment.State.UNDEPLOYING if locked.operation == "undeploy" else Deployment.State.DEPLOYING)
        )
        locked.error = ""
        locked.finished_at = None
        locked.save(update_fields=["state", "error", "finished_at", "updated_at"])
        event(locked, "deployment.retried", "Retrying from the step that failed.")
        transaction.on_commit(lambda: schedule(locked.pk))
    return locked


def cancel(deployment: Deployment) -> Deployment:
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if locked.state not in Deployment.CANCELLABLE_STATES:
            raise InvalidState(
                f"Deployment {locked.pk} is {locked.state}; only a deployment in progress can be cancelled."
            )
        locked.cancel_requested = True
        locked.save(update_fields=["cancel_requested", "updated_at"])
        event(locked, "deployment.cancel_requested", "Cancelling: running steps finish, waiting steps are dropped.")
        transaction.on_commit(lambda: schedule(locked.pk))
    return locked
