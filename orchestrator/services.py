"""Deployments as people ask for them: deploy a template, deploy again, upgrade, undeploy, retry, cancel.

Used by the catalogue (a subscription deploys its version), the API and the CLI.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import F

from config.crypto import decrypt_json, encrypt_json
from config.errors import InvalidState, ValidationFailed
from crane.models import Target
from crane.targets import default_target
from orchestrator import engine
from orchestrator.engine import cancel as deployment_cancel  # noqa: F401 - part of this module's API
from orchestrator.engine import retry as deployment_retry  # noqa: F401 - part of this module's API
from orchestrator.limits import template_limits
from orchestrator.models import Deployment
from orchestrator.plan import Plan, PlanError, PlannedStep, StepKind, build_plan
from orchestrator.tosca import Report, validate_bytes


def _checked(template: bytes, filename: str) -> Report:
    report = validate_bytes(template, filename=filename, limits=template_limits())
    if not report.deployable or report.template is None:
        # A file refused before it could be read (too large, a bad archive) says why in its one problem.
        refusal = report.problems[0].message if report.template is None and len(report.problems) == 1 else None
        raise ValidationFailed(
            refusal or "The template cannot be deployed; see its problems.",
            code="not_deployable",
            details=report.to_dict(),
        )
    return report


def plan_for(template: bytes, filename: str, inputs: Mapping[str, Any]) -> Plan:
    return _plan(_checked(template, filename), inputs)


def _plan(report: Report, inputs: Mapping[str, Any]) -> Plan:
    assert report.template is not None
    try:
        return build_plan(report.template, inputs)
    except PlanError as exc:
        raise ValidationFailed(
            "Some inputs are not valid; nothing was deployed.",
            code="invalid_inputs",
            details={e.input or "template": e.message for e in exc.errors},
        ) from None


def deployment_create(
    *,
    template: bytes,
    filename: str,
    inputs: Mapping[str, Any],
    target: Target | None = None,
    name: str = "",
    owner: str = "",
) -> Deployment:
    """Checks the template and inputs, stores the deployment with its plan, and starts it."""
    report = _checked(template, filename)
    assert report.template is not None
    plan = _plan(report, inputs)  # validated once: a large CSAR is not unpacked twice
    secret_names = {i.name for i in report.template.inputs if i.secret}
    plain = {k: v for k, v in inputs.items() if k not in secret_names}
    secret = {k: v for k, v in inputs.items() if k in secret_names}
    with transaction.atomic():
        deployment = Deployment.objects.create(
            name=name,
            owner=owner,
            target=target or default_target(),
            template=template,
            template_filename=filename,
            template_sha256=hashlib.sha256(template).hexdigest(),
            inputs=plain,
            secret_inputs=encrypt_json(secret) if secret else "",
            plan=plan.to_dict(),
            generation=1,
            operation="deploy",
        )
        engine.create_steps(deployment, plan)
        engine.event(deployment, "deployment.created", f"Deployment of {len(plan.steps)} steps on {deployment.target}.")
        transaction.on_commit(lambda: engine.schedule(deployment.pk))
    return deployment


def _next_generation(locked: Deployment, *, operation: str, state: str, **fields: Any) -> None:
    """Starts the deployment's next operation (its row locked). The last one's waiting steps are dropped
    and its running ones abandoned: their leases stop being honoured once the generation moves on."""
    locked.steps.filter(generation=locked.generation, state__in=("pending", "queued")).update(state="cancelled")
    Deployment.objects.filter(pk=locked.pk).update(generation=F("generation") + 1)
    locked.refresh_from_db()
    changes: dict[str, Any] = {
        "operation": operation,
        "state": state,
        "cancel_requested": False,
        "error": "",
        "finished_at": None,
        **fields,
    }
    for name, value in changes.items():
        setattr(locked, name, value)
    locked.save(update_fields=[*changes, "updated_at"])


def deployment_undeploy(*, deployment: Deployment) -> Deployment:
    """Removes everything the deployment created: services in the reverse order of the plan, then the rest."""
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if locked.state == Deployment.State.REMOVED:
            return locked
        if locked.state in (Deployment.State.UNDEPLOYING,):
            raise InvalidState(f"Deployment {locked.pk} is already being removed.")
        plan = Plan.from_dict(locked.plan) if locked.plan else Plan(steps=())
        services = [s for s in plan.steps if s.kind is StepKind.SERVICE]
        removal: list[PlannedStep] = []
        previous: tuple[str, ...] = ()
        for step in reversed(services):
            key = f"{step.node}.remove"
            removal.append(PlannedStep(key, StepKind.REMOVE, step.node, previous, {}, f"remove {step.node}"))
            previous = (key,)
        removal.append(
            PlannedStep("sweep", StepKind.REMOVE, None, previous, {}, "remove the network, volumes and secrets")
        )
        _next_generation(locked, operation="undeploy", state=Deployment.State.UNDEPLOYING)
        engine.create_steps(locked, Plan(steps=tuple(removal)))
        engine.event(locked, "deployment.undeploying", "Removing the deployment.")
        transaction.on_commit(lambda: engine.schedule(locked.pk))
    return locked


def deployment_upgrade(
    *, deployment: Deployment, template: bytes, filename: str, inputs: Mapping[str, Any]
) -> Deployment:
    """Moves a running deployment to another template (a newer version) changing only what differs.

    Services whose definition changed are updated in place (rolling, as crane updates them); nodes that
    left the template are removed; if a step fails, the previous template is restored (rollback).
    """
    report = _checked(template, filename)
    assert report.template is not None
    plan = _plan(report, inputs)  # validated once: a large CSAR is not unpacked twice
    secret_names = {i.name for i in report.template.inputs if i.secret}
    plain = {k: v for k, v in inputs.items() if k not in secret_names}
    secret = {k: v for k, v in inputs.items() if k in secret_names}
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if locked.state != Deployment.State.RUNNING:
            raise InvalidState(f"Deployment {locked.pk} is {locked.state}; only a running deployment can be upgraded.")
        old_secret = decrypt_json(locked.secret_inputs) if locked.secret_inputs else {}
        changed_inputs = {k for k in set(old_secret) | set(secret) if old_secret.get(k) != secret.get(k)}
        locked.previous = {
            "template": base64.b64encode(bytes(locked.template)).decode(),
            "template_filename": locked.template_filename,
            "template_sha256": locked.template_sha256,
            "inputs": locked.inputs,
            "secret_inputs": locked.secret_inputs,
            "plan": locked.plan,
        }
        locked.template = template
        locked.template_filename = filename
        locked.template_sha256 = hashlib.sha256(template).hexdigest()
        locked.inputs = plain
        locked.secret_inputs = encrypt_json(secret) if secret else ""
        to_run = engine.start_generation(locked, plan, operation="upgrade", changed_inputs=changed_inputs)
        engine.event(locked, "deployment.upgrading", f"Upgrading: {to_run} of {len(plan.steps)} steps change.")
        transaction.on_commit(lambda: engine.schedule(locked.pk))
    return locked


def deployment_redeploy(*, deployment: Deployment) -> Deployment:
    """Runs the whole plan again. Every step converges, so what drifted (a service removed by hand, a
    lost volume) comes back; a failed deployment starts over instead of resuming; a removed one returns.
    """
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if locked.state in Deployment.BUSY_STATES:
            raise InvalidState(
                f"Deployment {locked.pk} is {locked.state}; wait for it to finish, or cancel it, before deploying "
                "again."
            )
        _next_generation(locked, operation="deploy", state=Deployment.State.DEPLOYING, outputs={})
        plan = Plan.from_dict(locked.plan)
        engine.create_steps(locked, plan)
        engine.event(locked, "deployment.redeploying", f"Deploying again: all {len(plan.steps)} steps.")
        transaction.on_commit(lambda: engine.schedule(locked.pk))
    return locked
