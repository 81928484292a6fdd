"""One set of template limits, read from AGORA_MAX_TEMPLATE_BYTES, for every place a template is read:
upload, validation, the portal's plan check, subscribing (planning), the worker's steps and the CLI.

Raised above the built-in 20 MiB, a larger CSAR or YAML goes all the way to a running service; lowered,
every one of those places refuses a file above it with the same sentence.
"""

from __future__ import annotations

import ast
import io
import random
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from catalogue import services
from catalogue.models import Organization, Service, ServiceVersion, Subscription
from config.errors import ValidationFailed
from crane.models import Target
from orchestrator import execute
from orchestrator.models import Deployment
from orchestrator.services import plan_for
from tests.conftest import DOCKER_TEMPLATE, actor, client_for
from tests.engine import conftest as engine_fixtures
from tests.engine.conftest import WEB_TEMPLATE, drive, needs_swarm
from tests.portal.conftest import client_of

# The fixtures of the engine's tests, found by pytest under these names.
queue_name = engine_fixtures.queue_name
cleanup = engine_fixtures.cleanup

MIB = 1024 * 1024
BUILT_IN = 20 * MIB  # the size every loader used before, whatever the setting said
RAISED = 32 * MIB
ROOT = Path(__file__).resolve().parents[2]


def big_csar(template: str, padding: int) -> bytes:
    """A CSAR whose template is small and whose padding file makes it `padding` bytes larger; stored,
    not deflated, so the zip checks see an honest size and compression ratio."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("service.yaml", template, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("files/padding.bin", b"\0" * padding, compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def big_yaml(template: str, size: int) -> bytes:
    """The template padded with one comment line to exactly `size` bytes."""
    head = template.encode() + b"# "
    return head + b"x" * (size - len(head) - 1) + b"\n"


def published(alice: Any, charlie: Any, service: Service, filename: str, data: bytes) -> ServiceVersion:
    """Uploaded through the API (so the request size check runs too), submitted and approved."""
    response = client_for(alice).post(
        f"/api/v1/services/{service.slug}/versions/",
        {"version": "1.0.0", "file": SimpleUploadedFile(filename, data)},
        format="multipart",
    )
    assert response.status_code == 201, response.content[:2000]
    version = ServiceVersion.objects.get(pk=response.json()["id"])
    assert version.template_size == len(data)
    services.version_submit(actor=actor(alice), version=version)
    return services.version_approve(actor=actor(charlie), version=version)


# --- raised: a template above the built-in 20 MiB goes all the way --------------------------------------


@pytest.mark.docker
@needs_swarm
def test_a_csar_above_20_mib_uploads_publishes_and_runs_when_the_setting_allows_it(
    alice: Any,
    bob: Any,
    charlie: Any,
    service: Service,
    subscriber_org: Organization,
    queue_name: str,
    cleanup: list[str],
    settings: Any,
    transactional_db: None,
) -> None:
    settings.AGORA_MAX_TEMPLATE_BYTES = RAISED
    settings.AGORA_WAIT_HEALTHY_SECONDS = 60
    swarm = engine_fixtures.make_target(Target.Mode.SWARM)
    data = big_csar(WEB_TEMPLATE, BUILT_IN + MIB)
    assert len(data) > BUILT_IN + MIB
    version = published(alice, charlie, service, "web.csar", data)

    answer = client_for(bob).post(
        "/api/v1/subscriptions/",
        {"name": "web", "subscriber": subscriber_org.slug, "version": version.pk, "target": swarm.name},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    cleanup.append(answer.json()["deployment"])
    deployment = drive(
        Deployment.objects.get(pk=answer.json()["deployment"]), {Deployment.State.RUNNING, Deployment.State.FAILED}
    )
    assert deployment.state == Deployment.State.RUNNING, deployment.error
    assert len(bytes(deployment.template)) == len(data)
    with urllib.request.urlopen(deployment.outputs["url"], timeout=5) as page:  # noqa: S310 - our own deployment
        assert page.read().decode().strip() == "hello"


def test_a_yaml_above_20_mib_validates_publishes_plans_and_loads_in_the_worker(
    alice: Any, bob: Any, charlie: Any, service: Service, subscriber_org: Organization, settings: Any, tmp_path: Path
) -> None:
    settings.AGORA_MAX_TEMPLATE_BYTES = RAISED
    data = big_yaml(DOCKER_TEMPLATE, BUILT_IN + MIB)
    version = published(alice, charlie, service, "service.yaml", data)

    # The subscribe form's live check (htmx) plans it, and subscribing stores the plan.
    page = client_of(bob).post(
        reverse("portal:subscribe-plan", args=[service.slug]), {"name": "x"}, HTTP_HX_REQUEST="true"
    )
    assert "Agora will do 4 steps on the cloud" in page.content.decode()
    subscription = services.subscription_create(
        actor=actor(bob), subscriber=subscriber_org, version=version, name="forms", inputs={}
    )
    deployment = subscription.deployment
    assert deployment is not None
    assert [s.key for s in deployment.steps.all()] == ["network", "web.image", "web.service", "web.wait"]
    # What the worker does first for each step: load the stored template again.
    assert [n.name for n in execute.template_of(deployment).nodes] == ["web", "docker", "server"]

    path = tmp_path / "service.yaml"
    path.write_bytes(data)
    out = io.StringIO()
    call_command("tosca", "validate", str(path), stdout=out)
    assert out.getvalue().strip().endswith("valid, deployable")
    out = io.StringIO()
    call_command("tosca", "plan", str(path), stdout=out)
    assert "web.service" in out.getvalue()


def test_a_csar_that_expands_past_100_mib_is_read_when_the_raised_file_limit_allows_it(settings: Any) -> None:
    """Unpacked, a CSAR may be five times its file limit: raising the limit raises that too, or a text-heavy
    CSAR that uploads within the limit could never be unpacked."""
    settings.AGORA_MAX_TEMPLATE_BYTES = 40 * MIB
    # Deflates about 3:1, far below the ratio cap; seeded, not secret.
    block = bytes(random.Random(7).choices(b"ACGT", k=MIB))  # noqa: S311
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("service.yaml", DOCKER_TEMPLATE)
        with archive.open("files/genome.txt", "w") as member:
            for _ in range(110):
                member.write(block)
    data = buffer.getvalue()
    assert BUILT_IN < len(data) < 40 * MIB

    report = services.template_validate(filename="genome.csar", data=data)
    assert report.valid and report.deployable, [p.message for p in report.problems]
    assert [s.key for s in plan_for(data, "genome.csar", {}).steps] == [
        "network",
        "web.image",
        "web.service",
        "web.wait",
    ]


# --- lowered: every reader refuses a file above it, with the same sentence ---------------------------------

SMALL = 4096
OVER = 8192
SENTENCE = "The file is 8 KiB; Agora accepts templates and CSARs up to 4 KiB."


@pytest.fixture
def over_the_limit(
    alice: Any, charlie: Any, service: Service, bob: Any, subscriber_org: Organization, settings: Any
) -> tuple[ServiceVersion, Subscription]:
    """A version published (and subscribed) under the default limit, which the operator then lowers under it."""
    version = published(alice, charlie, service, "service.yaml", big_yaml(DOCKER_TEMPLATE, OVER))
    subscription = services.subscription_create(
        actor=actor(bob), subscriber=subscriber_org, version=version, name="forms", inputs={}
    )
    settings.AGORA_MAX_TEMPLATE_BYTES = SMALL
    return version, subscription


def test_with_the_setting_lowered_validation_and_upload_refuse_a_larger_file(
    alice: Any, service: Service, over_the_limit: tuple[ServiceVersion, Subscription]
) -> None:
    data = big_yaml(DOCKER_TEMPLATE, OVER)
    checked = client_for(alice).post(
        "/api/v1/validate/", {"file": SimpleUploadedFile("service.yaml", data)}, format="multipart"
    )
    assert checked.status_code == 413
    assert checked.json() == {"code": "too_large", "detail": SENTENCE}
    uploaded = client_for(alice).post(
        f"/api/v1/services/{service.slug}/versions/",
        {"version": "1.1.0", "file": SimpleUploadedFile("service.yaml", data)},
        format="multipart",
    )
    assert uploaded.status_code == 413
    assert uploaded.json() == {"code": "too_large", "detail": SENTENCE}
    assert list(service.versions.values_list("version", flat=True)) == ["1.0.0"]


def test_with_the_setting_lowered_planning_refuses_with_the_same_sentence(
    bob: Any, subscriber_org: Organization, over_the_limit: tuple[ServiceVersion, Subscription]
) -> None:
    version, subscription = over_the_limit
    with version.template.open("rb") as stored:
        data = stored.read()
    with pytest.raises(ValidationFailed) as caught:
        plan_for(data, version.template_filename, {})
    assert caught.value.message == SENTENCE

    answer = client_for(bob).post(
        "/api/v1/subscriptions/",
        {"name": "other", "subscriber": subscriber_org.slug, "version": version.pk},
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["detail"] == SENTENCE
    assert list(Subscription.objects.values_list("name", flat=True)) == ["forms"]

    page = client_of(bob).post(
        reverse("portal:subscribe-plan", args=[version.service.slug]), {"name": "x"}, HTTP_HX_REQUEST="true"
    )
    assert SENTENCE in page.content.decode()

    # The worker loads the template of the deployment made before with the same limits.
    assert subscription.deployment is not None
    with pytest.raises(execute.StepError) as refused:
        execute.template_of(subscription.deployment)
    assert SENTENCE in refused.value.message


def test_with_the_setting_lowered_the_cli_refuses_with_the_same_sentence(
    over_the_limit: tuple[ServiceVersion, Subscription], tmp_path: Path
) -> None:
    path = tmp_path / "service.yaml"
    path.write_bytes(big_yaml(DOCKER_TEMPLATE, OVER))
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("tosca", "validate", str(path), stdout=out)
    assert f"{path}: error: {SENTENCE}" in out.getvalue()
    with pytest.raises(CommandError) as refused:
        call_command("deploy", str(path), stdout=io.StringIO())
    assert str(refused.value).splitlines()[0] == SENTENCE
    assert Deployment.objects.count() == 1  # the subscription's, from before


def test_a_file_one_byte_over_says_both_sizes_in_bytes(settings: Any, alice: Any) -> None:
    settings.AGORA_MAX_TEMPLATE_BYTES = SMALL
    checked = client_for(alice).post(
        "/api/v1/validate/",
        {"file": SimpleUploadedFile("service.yaml", big_yaml(DOCKER_TEMPLATE, SMALL + 1))},
        format="multipart",
    )
    assert checked.status_code == 413
    assert checked.json()["detail"] == "The file is 4,097 bytes; Agora accepts templates and CSARs up to 4,096 bytes."


def test_the_request_size_limit_follows_the_template_limit(settings: Any, alice: Any, service: Service) -> None:
    settings.AGORA_MAX_TEMPLATE_BYTES = SMALL
    response = client_for(alice).post(
        f"/api/v1/services/{service.slug}/versions/",
        {"version": "1.0.0", "file": SimpleUploadedFile("t.yaml", b"#" * (2 * MIB))},
        format="multipart",
    )
    assert response.status_code == 413
    assert response.json()["detail"].endswith("templates and CSARs up to 4 KiB.")


# --- no reader falls back on the built-in default -------------------------------------------------------

# Calls that take the limits, with the argument that carries them (keyword name, or position).
LIMITED_CALLS = {"validate_bytes": "limits", "validate_path": "limits", "extract_csar": 3, "read_limited": 1}
PURE = ("orchestrator/tosca/", "orchestrator/compose.py")  # no Django: they get their limits from the caller


def _unlimited_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    # Limits made anywhere but orchestrator/limits.py (monitoring's Fluentd Limits are another class).
    makes_limits = path.relative_to(ROOT).as_posix() != "orchestrator/limits.py" and any(
        isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("orchestrator")
        and node.module != "orchestrator.limits"
        and any(alias.name in ("Limits", "tosca") for alias in node.names)
        for node in ast.walk(tree)
    )
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        where = f"{path.relative_to(ROOT)}:{node.lineno} {name}"
        if name == "Limits" and makes_limits:
            found.append(where)
        argument = LIMITED_CALLS.get(name)
        if isinstance(argument, str) and not any(k.arg == argument for k in node.keywords):
            found.append(where)
        if (
            isinstance(argument, int)
            and len(node.args) <= argument
            and not any(k.arg == "limits" for k in node.keywords)
        ):
            found.append(where)
    return found


def test_every_django_side_reader_of_templates_uses_the_limits_from_settings() -> None:
    apps = ("catalogue", "orchestrator", "portal", "config", "crane", "monitoring")
    paths = [
        path
        for app in apps
        for path in sorted((ROOT / app).rglob("*.py"))
        if not path.relative_to(ROOT).as_posix().startswith(PURE)
    ]
    assert [where for path in paths for where in _unlimited_calls(path)] == []
