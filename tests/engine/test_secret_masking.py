"""The engine never writes a secret: outputs, events, errors and the platform's log lines mask it.

Validation refuses templates whose outputs show a secret; these deployments are what is left:
plans stored before that rule (built here with build_plan, as Agora did then, without the
validation that now refuses them) and text that quotes a value (a script's output).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from config.crypto import encrypt_json
from crane.models import Target
from monitoring.models import LogLine
from orchestrator import engine
from orchestrator.models import Deployment, Event, Step
from orchestrator.plan import Plan, build_plan
from orchestrator.redact import MASK, Redactor
from orchestrator.services import deployment_create
from orchestrator.tosca import validate_bytes
from tests.crane.conftest import make_target
from tests.engine.conftest import drive, needs_swarm
from tests.engine.leaks import tables_holding
from tests.orchestrator.conftest import make_zip

SECRET = "k-7f3a9c21e5b04d68"
DEFAULT_SECRET = "default-admin-token-93"
LITERAL_SECRET = "literal-vault-pass-77"

OLD_TEMPLATE = """\
tosca_definitions_version: tosca_simple_yaml_1_3
imports: [agora/v1/profile.yaml]
topology_template:
  inputs:
    api_key:
      type: string
      metadata: { secret: true }
    admin_token:
      type: string
      default: default-admin-token-93
      metadata: { secret: true }
    pin:
      type: string
      metadata: { secret: true }
    site:
      type: string
      default: Citizen requests
  node_templates:
    web:
      type: agora.nodes.Container
      properties:
        image: agora/busybox:latest
        environment:
          API_KEY: { get_input: api_key }
    vault:
      type: agora.nodes.Secret
      properties:
        value: literal-vault-pass-77
  outputs:
    title:
      value: { get_input: site }
    key:
      value: { get_input: api_key }
    link:
      value: { concat: ["https://api.example.org/?key=", { get_input: api_key }] }
    settings:
      value: { get_property: [web, environment] }
    admin:
      value: { get_input: admin_token }
    pin:
      value: { get_input: pin }
"""


@pytest.fixture
def target(transactional_db: None) -> Target:
    return make_target(Target.Mode.SWARM)


def old_deployment(target: Target, template: str, secrets: dict[str, Any]) -> Deployment:
    """A deployment as Agora stored it before validation refused secrets in outputs: its plan's outputs
    read secret inputs. Its plan has no steps, so the engine goes straight to evaluating the outputs."""
    report = validate_bytes(template.encode(), filename="old.yaml")
    assert report.template is not None and not report.deployable  # what validation says today
    plan = build_plan(report.template, secrets)
    deployment = Deployment.objects.create(
        target=target,
        template=template.encode(),
        template_filename="old.yaml",
        template_sha256=hashlib.sha256(template.encode()).hexdigest(),
        secret_inputs=encrypt_json(secrets),
        plan=Plan(steps=(), outputs=plan.outputs).to_dict(),
        generation=1,
    )
    assert SECRET not in json.dumps(deployment.plan)  # plans hold expressions, never secret values
    return deployment


def test_outputs_of_a_plan_made_before_validation_are_masked_when_evaluated(target: Target) -> None:
    deployment = old_deployment(target, OLD_TEMPLATE, {"api_key": SECRET, "pin": "321"})

    engine.schedule(deployment.pk)

    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.RUNNING, deployment.error
    assert deployment.outputs == {
        "title": "Citizen requests",
        "key": MASK,
        "link": MASK,
        "settings": MASK,
        "admin": MASK,  # the template's default of a secret input is a secret too
        "pin": MASK,  # shorter than what text masking looks for, but the output reads it: masked whole
    }
    running = Event.objects.get(deployment=deployment, kind="deployment.running")
    told = running.message.removeprefix("The deployment is running. ").split(", ")
    assert sorted(told) == sorted(f"{k}: {v}" for k, v in deployment.outputs.items())
    assert LogLine.objects.filter(deployment_id=deployment.pk, message=running.message).exists()
    assert tables_holding(SECRET) == []
    assert tables_holding(DEFAULT_SECRET) == []


def test_an_output_that_cannot_be_evaluated_fails_without_quoting_the_secret(target: Target) -> None:
    template = OLD_TEMPLATE.replace(
        "    title:\n", '    part:\n      value: { token: [{ get_input: api_key }, ",", 5] }\n    title:\n'
    )
    deployment = old_deployment(target, template, {"api_key": SECRET, "pin": "321"})

    engine.schedule(deployment.pk)

    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.FAILED
    assert (
        deployment.error == "The outputs could not be evaluated: token: index 5 is out of range; the text has 1 part."
    )
    assert Event.objects.get(deployment=deployment, kind="deployment.failed").message == deployment.error
    assert tables_holding(SECRET) == []


def test_events_and_platform_log_lines_mask_every_known_secret_value(target: Target) -> None:
    quoted = 'pa"ss\\word-0'  # as JSON and Python write it inside a message, too
    deployment = old_deployment(target, OLD_TEMPLATE, {"api_key": SECRET, "pin": quoted})

    engine.event(deployment.pk, "step.failed", f"Docker said: env API_KEY={SECRET} is not allowed.")
    engine.event(deployment, "step.failed", f"Its last lines: {json.dumps({'pin': quoted})} {quoted!r}")
    engine.event(deployment, "step.failed", f"The default: {DEFAULT_SECRET}, the vault: {LITERAL_SECRET}.")

    messages = list(Event.objects.filter(deployment=deployment).values_list("message", flat=True))
    assert messages == [
        f"Docker said: env API_KEY={MASK} is not allowed.",
        f'Its last lines: {{"pin": "{MASK}"}} \'{MASK}\'',
        f"The default: {MASK}, the vault: {MASK}.",
    ]
    lines = set(LogLine.objects.filter(deployment_id=deployment.pk).values_list("message", flat=True))
    assert lines == set(messages)
    assert tables_holding(SECRET) == [] and tables_holding(DEFAULT_SECRET) == []
    assert tables_holding("ss\\word") == []


def test_a_short_secret_value_is_not_masked_in_every_word() -> None:
    redactor = Redactor.of(["abc", SECRET, 12345, True, {"nested": ["deep-secret"]}])
    assert redactor.text(f"abcdef {SECRET} 12345 True deep-secret") == f"abcdef {MASK} {MASK} True {MASK}"
    assert redactor.data({"n": 12345, "ok": True, "k": [f"x{SECRET}"], SECRET: 1}) == {
        "n": MASK,
        "ok": True,
        "k": [f"x{MASK}"],
        MASK: 1,
    }


SCRIPTED = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    api_key:
      type: string
      metadata: { secret: true }
  node_templates:
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: server
      interfaces:
        Standard:
          create:
            implementation: scripts/create.sh
            inputs:
              API_KEY: { get_input: api_key }
          start:
            implementation: scripts/start.sh
            inputs:
              API_KEY: { get_input: api_key }
    server:
      type: tosca.nodes.Compute
"""
SCRIPTS = {
    "scripts/create.sh": 'echo "configured with $API_KEY (${#API_KEY} characters)"\n',
    "scripts/start.sh": 'echo "cannot reach the API with key $API_KEY" >&2\nexit 4\n',
}


@pytest.mark.docker
@needs_swarm
def test_a_script_that_prints_its_secret_input_leaves_it_in_no_row(
    swarm: Target, queue_name: str, cleanup: list[str], settings: Any
) -> None:
    settings.AGORA_WAIT_HEALTHY_SECONDS = 60
    deployment = deployment_create(
        template=make_zip({"service.yaml": SCRIPTED, **SCRIPTS}),
        filename="app.csar",
        inputs={"api_key": SECRET},
        target=swarm,
    )
    cleanup.append(deployment.pk)

    deployment = drive(deployment, {Deployment.State.RUNNING, Deployment.State.FAILED})

    assert deployment.state == Deployment.State.FAILED
    created = Step.objects.get(deployment=deployment, key="app.create")
    assert created.result["output"].strip() == f"configured with {MASK} ({len(SECRET)} characters)"
    failed = Step.objects.get(deployment=deployment, state=Step.State.FAILED)
    assert failed.key == "app.start"
    assert "exit code 4" in failed.error and f"cannot reach the API with key {MASK}" in failed.error
    assert f"cannot reach the API with key {MASK}" in deployment.error
    event = Event.objects.get(deployment=deployment, kind="step.failed")
    assert f"cannot reach the API with key {MASK}" in event.message
    assert LogLine.objects.filter(deployment_id=deployment.pk, message=event.message).exists()
    assert tables_holding(SECRET) == []
