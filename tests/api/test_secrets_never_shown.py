"""A secret input is shown nowhere: not in outputs, the deployment, its timeline, the platform's logs or the database.

Validation refuses a template whose outputs would show a secret (the API's validate and upload
answers say which output and which secret). A deployment planned before that rule, whose plan still
carries a secret into its outputs, runs for real on Docker and masks them.
"""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from catalogue import services
from catalogue.models import Service, ServiceVersion
from crane import driver
from crane.models import Target
from orchestrator.models import Deployment
from orchestrator.plan import build_plan
from orchestrator.redact import MASK
from orchestrator.tosca import validate_bytes
from tests.conftest import actor, client_for, upload
from tests.engine import conftest as engine_fixtures
from tests.engine.conftest import drive, needs_swarm
from tests.engine.leaks import tables_holding

SECRET = "k-5e1d0c93b7a24f16"
# The engine tests' fixtures: a swarm target, a queue of the test's own, and Docker swept after.
swarm, queue_name, cleanup = engine_fixtures.swarm, engine_fixtures.queue_name, engine_fixtures.cleanup

SERVICE = """\
tosca_definitions_version: tosca_simple_yaml_1_3
imports: [agora/v1/profile.yaml]
topology_template:
  inputs:
    api_key:
      type: string
      description: The key of the city's open-data API.
      metadata:
        secret: true
      constraints:
        - min_length: 12
  node_templates:
    web:
      type: agora.nodes.Container
      properties:
        image: agora/busybox:latest
        command: [sh, -c, "mkdir -p /www && echo open data > /www/index.html && exec httpd -f -p 80 -h /www"]
        environment:
          API_KEY: { get_input: api_key }
        ports:
          - target: 80
        cpu_limit: 0.2
        mem_limit: 32 MB
        healthcheck:
          test: [CMD-SHELL, "nc -w 1 127.0.0.1 80 </dev/null"]
          interval: 1 s
          timeout: 1 s
          retries: 5
  outputs:
    url:
      value:
        concat: ["http://", { get_attribute: [web, public_address] }, ":", { get_attribute: [web, public_port] }, "/"]
"""
# What Agora let a publisher write before outputs were checked for secrets.
SHOWING_SECRETS = (
    SERVICE
    + """\
    key:
      value: { get_input: api_key }
    link:
      value: { concat: ["https://api.example.org/?key=", { get_input: api_key }] }
    settings:
      value: { get_property: [web, environment] }
"""
)
LEAKS = {
    "key": ('the secret input "api_key"', 34),
    "link": ('the secret input "api_key"', 36),
    "settings": ('the secret input "api_key" (through the property "environment" of node template "web")', 38),
}


def policy_errors(problems: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    """Output name → (what it would show, line) for each problem about an output showing a secret."""
    found = {}
    for problem in problems:
        assert (problem["severity"], problem["kind"]) == ("error", "policy"), problem
        name = problem["message"].split('"')[1]
        shown = problem["message"].split(" would show ", 1)[1].split(";", 1)[0]
        assert problem["message"].startswith(f'Output "{name}" would show {shown}; outputs are shown to everyone')
        found[name] = (shown, problem["line"])
    return found


@pytest.mark.django_db
def test_validate_answers_which_outputs_would_show_a_secret(bob: Any) -> None:
    answer = client_for(bob).post(
        "/api/v1/validate/",
        {"file": SimpleUploadedFile("service.yaml", SHOWING_SECRETS.encode())},
        format="multipart",
    )

    assert answer.status_code == 200
    body = answer.json()
    assert (body["valid"], body["deployable"]) == (True, False)
    assert policy_errors(body["problems"]) == LEAKS


@pytest.mark.django_db
def test_a_version_whose_outputs_show_a_secret_is_kept_as_a_draft_that_cannot_be_submitted(
    alice: Any, service: Service
) -> None:
    client = client_for(alice)
    answer = client.post(
        f"/api/v1/services/{service.slug}/versions/",
        {"version": "1.0.0", "file": SimpleUploadedFile("service.yaml", SHOWING_SECRETS.encode())},
        format="multipart",
    )
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["state"], body["deployable"]) == ("draft", False)
    assert policy_errors(body["problems"]) == LEAKS

    refused = client.post(f"/api/v1/versions/{body['id']}/submit/")
    assert refused.status_code == 409, refused.content
    assert refused.json()["code"] == "not_deployable"
    assert ServiceVersion.objects.get(pk=body["id"]).state == ServiceVersion.State.DRAFT


@pytest.mark.django_db
def test_manage_py_deploy_refuses_it_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text(SHOWING_SECRETS)

    with pytest.raises(CommandError) as refused:
        call_command("deploy", str(path), "--input", f"api_key={SECRET}")

    assert 'Output "key" would show the secret input "api_key"' in str(refused.value)
    assert not Deployment.objects.exists()


@pytest.mark.docker
@needs_swarm
def test_a_deployment_planned_before_the_rule_shows_its_secret_nowhere(
    swarm: Target,
    queue_name: str,
    cleanup: list[str],
    settings: Any,
    alice: Any,
    bob: Any,
    charlie: Any,
    service: Service,
) -> None:
    settings.AGORA_WAIT_HEALTHY_SECONDS = 60
    version = upload(alice, service, text=SERVICE)
    services.version_submit(actor=actor(alice), version=version)
    services.version_approve(actor=actor(charlie), version=version)
    subscriber = client_for(bob)
    answer = subscriber.post(
        "/api/v1/subscriptions/",
        {
            "name": "open-data",
            "subscriber": "barcelona",
            "version": version.pk,
            "target": swarm.name,
            "inputs": {"api_key": SECRET},
        },
        format="json",
    )
    assert answer.status_code == 201, answer.content
    subscription_id, deployment_id = answer.json()["id"], answer.json()["deployment"]
    cleanup.append(deployment_id)
    # The deployment as it was planned before validation refused such outputs: the same nodes and steps,
    # and a template and plan whose outputs read the secret input.
    old = validate_bytes(SHOWING_SECRETS.encode(), filename="service.yaml").template
    assert old is not None
    plan = build_plan(old, {"api_key": SECRET})
    deployment = Deployment.objects.get(pk=deployment_id)
    assert [s.key for s in plan.steps] == list(deployment.steps.values_list("key", flat=True))
    Deployment.objects.filter(pk=deployment_id).update(
        template=SHOWING_SECRETS.encode(),
        template_sha256=hashlib.sha256(SHOWING_SECRETS.encode()).hexdigest(),
        plan=plan.to_dict(),
    )

    deployment = drive(deployment, {Deployment.State.RUNNING, Deployment.State.FAILED})

    assert deployment.state == Deployment.State.RUNNING, deployment.error
    # The secret was there to leak: the container has it, and the service answers.
    assert driver.exec_in_node(swarm, deployment_id, "web", b'echo "$API_KEY"\n') == (0, f"{SECRET}\n")
    with urllib.request.urlopen(deployment.outputs["url"], timeout=5) as page:  # noqa: S310 - our own deployment
        assert page.read().decode().strip() == "open data"
    subscription = subscriber.get(f"/api/v1/subscriptions/{subscription_id}/")
    assert subscription.status_code == 200
    assert subscription.json()["outputs"] == {
        "url": deployment.outputs["url"],
        "key": MASK,
        "link": MASK,
        "settings": MASK,
    }
    shown = {
        "subscription": subscription,
        "deployment": subscriber.get(f"/api/v1/deployments/{deployment_id}/"),
        "events": subscriber.get(f"/api/v1/deployments/{deployment_id}/events/"),
        "its platform logs": client_for(charlie).get(f"/api/v1/logs/?deployment={deployment_id}"),
        "all platform logs": client_for(charlie).get("/api/v1/logs/"),
        "a search for it": client_for(charlie).get(f"/api/v1/logs/?search={SECRET}"),
    }
    assert {name: a.status_code for name, a in shown.items()} == dict.fromkeys(shown, 200)
    assert [name for name, a in shown.items() if SECRET in a.content.decode()] == []
    events = shown["events"].json()["results"]
    running = next(e["message"] for e in events if e["kind"] == "deployment.running")
    assert f"key: {MASK}" in running and f"link: {MASK}" in running
    logged = [line["message"] for line in shown["its platform logs"].json()["results"]]
    assert running in logged
    assert shown["a search for it"].json()["results"] == []
    assert tables_holding(SECRET) == []
