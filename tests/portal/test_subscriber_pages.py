"""Subscriber pages: the subscribe form from the template's inputs, the deployment page, my services,
upgrade and unsubscribe; scoped to the organization, CSRF-protected, secrets masked."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django import forms
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalogue import services
from catalogue.models import Membership, Organization, Service, ServiceVersion, Subscription
from config.crypto import decrypt_json
from crane.models import Target
from monitoring.models import Alert, AlertRule, DeploymentHealth
from monitoring.store import Line, Sample, get_store
from orchestrator.models import Deployment, Step
from portal.forms import input_field
from tests.conftest import DOCKER_TEMPLATE, actor, upload
from tests.factories import MembershipFactory, UserFactory
from tests.portal.conftest import by_class, by_id, client_of, queries_for, text_of

pytestmark = pytest.mark.django_db

SECRET_TEMPLATE = """\
tosca_definitions_version: tosca_simple_yaml_1_3
imports: [agora/v1/profile.yaml]
topology_template:
  inputs:
    site_title:
      type: string
      default: Citizen requests
      constraints:
        - max_length: 20
    admin_password:
      type: string
      metadata:
        secret: true
      constraints:
        - min_length: 10
  node_templates:
    web:
      type: agora.nodes.Container
      properties:
        image: agora/busybox:latest
        command: [sh, -c, "exec httpd -f -p 80 -h /"]
        environment:
          TITLE: { get_input: site_title }
          PASSWORD: { get_input: admin_password }
        ports:
          - target: 80
  outputs:
    url:
      value:
        concat: ["http://", { get_attribute: [web, public_address] }, ":", { get_attribute: [web, public_port] }, "/"]
"""

SUBSCRIBE = reverse("portal:subscribe", args=["citizen-forms"])


def publish(alice: Any, charlie: Any, service: Service, version: str, text: str = DOCKER_TEMPLATE) -> ServiceVersion:
    draft = upload(alice, service, version, text)
    services.version_submit(actor=actor(alice), version=draft)
    return services.version_approve(actor=actor(charlie), version=draft)


@pytest.fixture
def secret_service(alice: Any, charlie: Any, publisher_org: Organization) -> ServiceVersion:
    service = services.service_create(actor=actor(alice), publisher=publisher_org, name="Secret Forms")
    return publish(alice, charlie, service, "1.0.0", SECRET_TEMPLATE)


# --- the subscribe form --------------------------------------------------------------------------


def test_subscribe_form_is_generated_from_the_inputs(bob: Any, published_version: ServiceVersion) -> None:
    page = client_of(bob).get(SUBSCRIBE)
    assert page.status_code == 200
    replicas = dict(by_id(page, "id_input__replicas").attributes)
    assert (replicas["type"], replicas["min"], replicas["max"], replicas["value"]) == ("number", "1", "5", "1")
    greeting = dict(by_id(page, "id_input__greeting").attributes)
    assert greeting["value"] == "Hello" and "required" not in greeting
    cloud = text_of(by_id(page, "id_target"))
    assert "The platform's default cloud" in cloud
    # The plan of what will be created, for the default values.
    plan = text_of(by_id(page, "plan-summary"))
    assert "create the deployment's private network" in plan and "run 1 x" in plan


def test_the_clouds_say_where_they_are_and_whether_they_answer(bob: Any, published_version: ServiceVersion) -> None:
    Target.objects.create(
        name="bcn-1", provider="OpenStack", region="Barcelona", public_host="bcn.example", endpoint="tcp://bcn:2376",
        state=Target.State.REACHABLE,
    )  # fmt: skip
    cloud = text_of(by_id(client_of(bob).get(SUBSCRIBE), "id_target"))
    assert "bcn-1 (OpenStack, Barcelona) · reachable" in cloud


def test_secret_inputs_are_password_fields_with_the_browser_checks(bob: Any, secret_service: ServiceVersion) -> None:
    page = client_of(bob).get(reverse("portal:subscribe", args=["secret-forms"]))
    password = dict(by_id(page, "id_input__admin_password").attributes)
    assert password["type"] == "password" and password["minlength"] == "10" and "required" in password
    assert "value" not in password
    title = dict(by_id(page, "id_input__site_title").attributes)
    assert title["maxlength"] == "20"


def test_a_constraint_violation_is_shown_next_to_the_field_and_creates_nothing(
    bob: Any, published_version: ServiceVersion
) -> None:
    page = client_of(bob).post(
        SUBSCRIBE, {"name": "forms", "input__replicas": "9", "input__greeting": "Hi", "submit": "subscribe"}
    )
    assert page.status_code == 200
    assert "replicas must be between 1 and 5." in text_of(by_id(page, "id_input__replicas_error"))
    assert "Nothing was created" in page.content.decode()
    assert not Subscription.objects.exists() and not Deployment.objects.exists()


def test_a_constraint_violation_is_explained_in_the_subscribers_language(
    bob: Any, published_version: ServiceVersion
) -> None:
    client = client_of(bob)
    client.post("/i18n/setlang/", {"language": "es", "next": "/"})
    page = client.post(
        SUBSCRIBE, {"name": "forms", "input__replicas": "9", "input__greeting": "Hi", "submit": "subscribe"}
    )
    assert "replicas debe estar entre 1 y 5." in text_of(by_id(page, "id_input__replicas_error"))
    assert not Subscription.objects.exists()


def test_subscribing_creates_the_deployment_and_shows_its_page(bob: Any, published_version: ServiceVersion) -> None:
    client = client_of(bob)
    answer = client.post(
        SUBSCRIBE, {"name": "forms", "input__replicas": "2", "input__greeting": "Bon dia", "submit": "subscribe"}
    )
    subscription = Subscription.objects.get()
    assert answer.status_code == 302
    assert answer["Location"] == reverse("portal:deployment", args=[subscription.deployment_id])
    assert subscription.inputs == {"replicas": 2, "greeting": "Bon dia"}
    assert subscription.subscriber.slug == "barcelona" and subscription.created_by == bob
    page = client.get(answer["Location"])
    assert "Subscribed to Citizen Forms" in page.content.decode()
    live = by_id(page, "deployment-live")
    attributes = dict(live.attributes)
    assert attributes["hx-trigger"] == "every 2s"  # polls while the deployment is busy
    assert "0 of 4 steps done" in text_of(live)
    assert '<progress max="4" value="0"' in page.content.decode()


def test_secret_values_are_kept_encrypted_and_never_shown(bob: Any, secret_service: ServiceVersion) -> None:
    client = client_of(bob)
    answer = client.post(
        reverse("portal:subscribe", args=["secret-forms"]),
        {"name": "secret", "input__admin_password": "correct-horse-9", "submit": "subscribe"},
    )
    assert answer.status_code == 302
    subscription = Subscription.objects.get()
    assert "admin_password" not in subscription.inputs
    assert decrypt_json(subscription.secret_inputs) == {"admin_password": "correct-horse-9"}
    for url in (
        reverse("portal:subscription", args=[subscription.pk]),
        answer["Location"],
        reverse("portal:subscriptions"),
    ):
        assert "correct-horse-9" not in client.get(url).content.decode()
    assert "••••••••" in client.get(reverse("portal:subscription", args=[subscription.pk])).content.decode()


def test_a_short_secret_comes_back_with_its_error_and_without_its_value(
    bob: Any, secret_service: ServiceVersion
) -> None:
    page = client_of(bob).post(
        reverse("portal:subscribe", args=["secret-forms"]),
        {"name": "secret", "input__admin_password": "short", "submit": "subscribe"},
    )
    assert "admin_password must have at least 10 characters." in text_of(by_id(page, "id_input__admin_password_error"))
    assert "value" not in dict(by_id(page, "id_input__admin_password").attributes)
    assert not Subscription.objects.exists()


def test_the_yaml_values_are_an_escape_hatch(bob: Any, published_version: ServiceVersion) -> None:
    client = client_of(bob)
    refused = client.post(SUBSCRIBE, {"name": "forms", "values_yaml": "replicas: 7\n", "submit": "yaml-subscribe"})
    assert "replicas must be between 1 and 5." in text_of(by_id(refused, "id_values_yaml_error"))
    assert not Subscription.objects.exists()
    bomb = client.post(SUBSCRIBE, {"name": "forms", "values_yaml": "a: &x [1, 2]\nb: *x\n", "submit": "yaml-subscribe"})
    assert "Aliases" in text_of(by_id(bomb, "id_values_yaml_error"))
    answer = client.post(
        SUBSCRIBE, {"name": "forms", "values_yaml": "replicas: 3\ngreeting: Hola\n", "submit": "yaml-subscribe"}
    )
    assert answer.status_code == 302
    assert Subscription.objects.get().inputs == {"replicas": 3, "greeting": "Hola"}


def test_yaml_values_stand_in_for_empty_required_fields(bob: Any, secret_service: ServiceVersion) -> None:
    answer = client_of(bob).post(
        reverse("portal:subscribe", args=["secret-forms"]),
        {"name": "secret", "values_yaml": "admin_password: correct-horse-9\n", "submit": "yaml-subscribe"},
    )
    assert answer.status_code == 302
    assert decrypt_json(Subscription.objects.get().secret_inputs) == {"admin_password": "correct-horse-9"}


def test_the_plan_summary_follows_the_values(bob: Any, published_version: ServiceVersion) -> None:
    client = client_of(bob)
    url = reverse("portal:subscribe-plan", args=["citizen-forms"])
    good = client.post(url, {"name": "x", "input__replicas": "3"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Agora will do 4 steps on the cloud" in good and "<html" not in good
    bad = client.post(url, {"name": "x", "input__replicas": "8"}, HTTP_HX_REQUEST="true").content.decode()
    assert "replicas must be between 1 and 5." in bad and "Agora will do" not in bad


def test_a_duplicate_name_is_refused_next_to_the_name(bob: Any, subscription: Subscription) -> None:
    page = client_of(bob).post(SUBSCRIBE, {"name": "forms", "input__replicas": "1", "submit": "subscribe"})
    assert "already has a subscription named" in text_of(by_id(page, "id_name_error"))
    assert Subscription.objects.count() == 1


def test_only_editors_of_a_public_administration_may_subscribe(
    alice: Any, subscriber_org: Organization, published_version: ServiceVersion
) -> None:
    viewer = UserFactory.create(username="victor")
    MembershipFactory.create(user=viewer, organization=subscriber_org, role=Membership.Role.VIEWER)
    assert client_of(viewer).get(SUBSCRIBE).status_code == 404
    assert client_of(alice).get(SUBSCRIBE).status_code == 404  # a publisher
    assert Client().get(SUBSCRIBE).status_code == 302  # sent to log in


# --- the deployment page ---------------------------------------------------------------------------


def fail(subscription: Subscription, error: str = "Traceback: container exited with code 1") -> Deployment:
    deployment = subscription.deployment
    assert deployment is not None
    step = deployment.steps.get(key="web.wait")
    Step.objects.filter(pk=step.pk).update(state=Step.State.FAILED, error=error)
    Step.objects.filter(deployment=deployment).exclude(pk=step.pk).update(state=Step.State.DONE)
    Deployment.objects.filter(pk=deployment.pk).update(state=Deployment.State.FAILED, error="web.wait failed")
    deployment.refresh_from_db()
    return deployment


def test_a_failed_deployment_says_why_offers_the_log_and_stops_polling(bob: Any, subscription: Subscription) -> None:
    deployment = fail(subscription)
    page = client_of(bob).get(reverse("portal:deployment", args=[deployment.pk]))
    live = by_id(page, "deployment-live")
    assert "hx-trigger" not in dict(live.attributes)
    text = text_of(live)
    assert "did not become ready and healthy in time" in text
    body = page.content.decode()
    assert "<details>" in body and "Traceback: container exited with code 1" in body
    assert "3 of 4 steps done" in text
    assert reverse("portal:deployment-retry", args=[deployment.pk]) in body


def test_the_live_part_alone_answers_htmx_polls(bob: Any, subscription: Subscription) -> None:
    url = reverse("portal:deployment", args=[subscription.deployment_id])
    partial = client_of(bob).get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="deployment-live").content.decode()
    assert "<html" not in partial
    assert 'id="deployment-live"' in partial and "0 of 4 steps done" in partial
    # The poll says what it saw; only a change is announced (out of band, in the page's status region).
    assert 'hx-vals=\'{"seen": "pending-0"}\'' in partial
    assert 'id="deployment-announce" hx-swap-oob="innerHTML"' in partial
    unchanged = (
        client_of(bob)
        .get(url, {"seen": "pending-0"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="deployment-live")
        .content.decode()
    )
    assert "deployment-announce" not in unchanged and "0 of 4 steps done" in unchanged


def test_retry_and_cancel_call_the_services(bob: Any, subscription: Subscription) -> None:
    client = client_of(bob)
    deployment = fail(subscription)
    answer = client.post(reverse("portal:deployment-retry", args=[deployment.pk]))
    assert answer.status_code == 302
    deployment.refresh_from_db()
    assert deployment.state == Deployment.State.DEPLOYING
    assert deployment.steps.get(key="web.wait").state == Step.State.PENDING
    client.post(reverse("portal:deployment-cancel", args=[deployment.pk]))
    deployment.refresh_from_db()
    assert deployment.cancel_requested
    # Asking again is refused with the service's own words, as a message.
    again = client.post(reverse("portal:deployment-retry", args=[deployment.pk]), follow=True)
    assert "only a failed deployment can be retried" in again.content.decode()


def test_outputs_of_a_running_deployment_link_the_service(bob: Any, subscription: Subscription) -> None:
    Deployment.objects.filter(pk=subscription.deployment_id).update(
        state=Deployment.State.RUNNING, outputs={"url": "http://localhost:30001/", "note": "javascript:alert(1)"}
    )
    body = client_of(bob).get(reverse("portal:deployment", args=[subscription.deployment_id])).content.decode()
    assert '<a href="http://localhost:30001/" rel="noopener noreferrer">http://localhost:30001/</a>' in body
    assert 'href="javascript:' not in body


# --- my services -------------------------------------------------------------------------------------


def test_my_services_shows_health_and_upgrade_badges(
    alice: Any, bob: Any, charlie: Any, subscription: Subscription, published_version: ServiceVersion
) -> None:
    client = client_of(bob)
    url = reverse("portal:subscriptions")
    page = client.get(url).content.decode()
    assert "forms" in page and "Unknown" in page and "upgrade available" not in page
    assert subscription.deployment is not None
    DeploymentHealth.objects.create(
        deployment=subscription.deployment, health=DeploymentHealth.Health.HEALTHY, checked_at=timezone.now()
    )
    publish(alice, charlie, published_version.service, "1.1.0")
    page = client.get(url).content.decode()
    assert "Healthy" in page and "upgrade available" in page


def test_my_services_queries_do_not_grow_with_the_subscriptions(
    bob: Any, subscriber_org: Organization, published_version: ServiceVersion
) -> None:
    client = client_of(bob)
    services.subscription_create(
        actor=actor(bob), subscriber=subscriber_org, version=published_version, name="s0", inputs={}
    )
    few = queries_for(client, reverse("portal:subscriptions"))
    for number in range(1, 6):
        subscription = services.subscription_create(
            actor=actor(bob), subscriber=subscriber_org, version=published_version, name=f"s{number}", inputs={}
        )
        assert subscription.deployment is not None
        DeploymentHealth.objects.create(deployment=subscription.deployment)
    assert queries_for(client, reverse("portal:subscriptions")) == few


def test_deployment_page_queries_do_not_grow_with_steps_and_events(bob: Any, subscription: Subscription) -> None:
    client = client_of(bob)
    url = reverse("portal:deployment", args=[subscription.deployment_id])
    few = queries_for(client, url)
    deployment = subscription.deployment
    assert deployment is not None
    for number in range(20):
        deployment.events.create(kind="step.started", message=f"event {number}")
    assert queries_for(client, url) == few


def test_unsubscribe_asks_first_then_removes_the_instance(bob: Any, subscription: Subscription) -> None:
    client = client_of(bob)
    url = reverse("portal:subscription-unsubscribe", args=[subscription.pk])
    assert "Yes, unsubscribe" in client.get(url).content.decode()
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.ACTIVE  # a GET changes nothing
    answer = client.post(url)
    assert answer.status_code == 302
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.CANCELLED
    assert Deployment.objects.get(pk=subscription.deployment_id).state == Deployment.State.UNDEPLOYING


def test_upgrade_shows_what_changes_and_keeps_the_values(
    alice: Any, bob: Any, charlie: Any, subscription: Subscription, published_version: ServiceVersion
) -> None:
    newer_template = DOCKER_TEMPLATE.replace("file: busybox:latest", "file: busybox:1.36").replace(
        "      default: Hello\n", "      default: Hello\n    colour:\n      type: string\n      required: false\n"
    )
    newer = publish(alice, charlie, published_version.service, "2.0.0", newer_template)
    Deployment.objects.filter(pk=subscription.deployment_id).update(state=Deployment.State.RUNNING)
    Step.objects.filter(deployment_id=subscription.deployment_id).update(state=Step.State.DONE)
    client = client_of(bob)
    url = reverse("portal:subscription-upgrade", args=[subscription.pk])
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Upgrade forms from 1.0.0 to 2.0.0" in body
    assert "new setting" in body  # colour
    assert "changed" in body  # the image step
    answer = client.post(url, {"version": newer.pk})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    subscription.refresh_from_db()
    assert subscription.version == newer
    assert subscription.inputs["replicas"] == 2  # the subscriber's value is kept


# --- scoping and CSRF --------------------------------------------------------------------------------


def test_another_organization_finds_nothing(mallory: Any, subscription: Subscription) -> None:
    client = client_of(mallory)
    client.post(reverse("portal:organization-switch"), {"organization": Organization.objects.get(slug="girona").pk})
    deployment_id = subscription.deployment_id
    for url in (
        reverse("portal:subscription", args=[subscription.pk]),
        reverse("portal:subscription-upgrade", args=[subscription.pk]),
        reverse("portal:subscription-unsubscribe", args=[subscription.pk]),
        reverse("portal:deployment", args=[deployment_id]),
    ):
        assert client.get(url).status_code == 404, url
    for url in (
        reverse("portal:subscription-unsubscribe", args=[subscription.pk]),
        reverse("portal:deployment-retry", args=[deployment_id]),
        reverse("portal:deployment-cancel", args=[deployment_id]),
    ):
        assert client.post(url).status_code == 404, url
    assert "forms" not in text_of(by_id(client.get(reverse("portal:subscriptions")), "main"))
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.ACTIVE


def test_every_form_needs_its_csrf_token(bob: Any, subscription: Subscription, published_version: Any) -> None:
    client = client_of(bob, csrf=True)
    deployment_id = subscription.deployment_id
    for url, data in (
        (SUBSCRIBE, {"name": "other", "submit": "subscribe"}),
        (reverse("portal:subscription-unsubscribe", args=[subscription.pk]), {}),
        (reverse("portal:deployment-cancel", args=[deployment_id]), {}),
        (reverse("portal:deployment-retry", args=[deployment_id]), {}),
        (reverse("portal:organization-switch"), {"organization": "1"}),
    ):
        assert client.post(url, data).status_code == 403, url
    assert Subscription.objects.count() == 1
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.ACTIVE
    # With the token the page's form carries, the same post goes through.
    page = client.get(reverse("portal:subscription-unsubscribe", args=[subscription.pk])).content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    answer = client.post(
        reverse("portal:subscription-unsubscribe", args=[subscription.pk]), {"csrfmiddlewaretoken": token}
    )
    assert answer.status_code == 302


# --- monitoring: charts, logs, alerts ----------------------------------------------------------------


def write_monitoring(deployment_id: str) -> None:
    now = timezone.now()
    store = get_store()
    store.write_samples(
        [
            Sample(
                time=now - datetime.timedelta(minutes=minutes),
                deployment_id=deployment_id,
                node="web",
                container="c1",
                cpu_percent=10.0 + minutes,
                memory_bytes=20 * 1024 * 1024,
                memory_limit=32 * 1024 * 1024,
            )
            for minutes in range(1, 30)
        ]
    )
    store.write_lines(
        [
            Line(time=now - datetime.timedelta(seconds=30), message="GET /index.html 200", deployment_id=deployment_id,
                 node="web", level="info"),
            Line(time=now - datetime.timedelta(seconds=20), message="database <b>connection</b> lost",
                 deployment_id=deployment_id, node="web", level="error"),
        ]
    )  # fmt: skip


def test_subscription_page_draws_charts_and_finds_log_lines(bob: Any, subscription: Subscription) -> None:
    assert subscription.deployment_id is not None
    write_monitoring(subscription.deployment_id)
    Alert.objects.create(
        deployment_id=subscription.deployment_id,
        kind=AlertRule.Kind.CPU,
        node="web",
        message="CPU above 80 % for 60 s",
        raised_at=timezone.now(),
    )
    client = client_of(bob)
    url = reverse("portal:subscription", args=[subscription.pk])
    page = client.get(url)
    body = page.content.decode()
    # The charts read their points from the REST API, which answers them to the same session.
    charts = by_class(page, "chart")
    assert [dict(c.attributes)["data-chart"] for c in charts] == ["cpu", "memory"]
    source = dict(charts[0].attributes)["data-url"]
    assert source == f"/api/v1/deployments/{subscription.deployment_id}/metrics/?range=1h"
    series = json.loads(dict(charts[1].attributes)["data-series"] or "[]")
    assert [(s["stat"], s["metric"]) for s in series][-1] == ("avg", "memory_limit")
    points = client.get(source).json()["points"]
    assert any(p["avg"]["cpu_percent"] is not None for p in points)
    assert "Now: CPU" in text_of(by_id(page, "charts"))
    assert "/static/vendor/uplot/uPlot.iife.min.js" in body and "/static/portal/charts.js" in body
    assert "CPU above 80 % for 60 s" in text_of(by_id(page, "alerts"))
    logs = text_of(by_id(page, "log-lines"))
    assert "GET /index.html 200" in logs and "lost" in logs
    # Searching answers the lines alone to htmx, the matched word marked and the rest escaped.
    found = client.get(url, {"q": "connection"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="log-lines")
    text = found.content.decode()
    assert "<html" not in text and "GET /index.html" not in text
    assert "database &lt;b&gt;<mark>connection</mark>&lt;/b&gt; lost" in text
    errors_only = client.get(url, {"level": "error"}).content.decode()
    assert "GET /index.html" not in errors_only
    # The live tail polls; a plain view does not.
    tail = client.get(url, {"tail": "1"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="log-lines").content.decode()
    assert 'hx-trigger="every 3s"' in tail
    assert 'hx-trigger="every 3s"' not in text
    # The other range of the charts, for htmx.
    day = client.get(url, {"range": "1d"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="charts").content.decode()
    assert "<html" not in day and "?range=1d" in day


def test_a_bad_log_cursor_is_a_message_not_an_error(bob: Any, subscription: Subscription) -> None:
    page = client_of(bob).get(reverse("portal:subscription", args=[subscription.pk]), {"before": "garbage"})
    assert page.status_code == 200
    assert "cursor is not valid" in text_of(by_id(page, "log-lines"))


def test_subscription_page_queries_do_not_grow_with_alerts_and_lines(bob: Any, subscription: Subscription) -> None:
    assert subscription.deployment_id is not None
    client = client_of(bob)
    url = reverse("portal:subscription", args=[subscription.pk])
    write_monitoring(subscription.deployment_id)
    Alert.objects.create(deployment_id=subscription.deployment_id, kind="cpu", message="m", raised_at=timezone.now())
    few = queries_for(client, url)
    write_monitoring(subscription.deployment_id)
    for kind in (AlertRule.Kind.MEMORY, AlertRule.Kind.RESTARTING, AlertRule.Kind.UNHEALTHY):
        Alert.objects.create(deployment_id=subscription.deployment_id, kind=kind, message="m", raised_at=timezone.now())
    assert queries_for(client, url) == few


# --- fields from input types (pure) -------------------------------------------------------------------


def test_each_input_type_gets_its_control_and_the_browsers_checks() -> None:
    number = input_field("n", {"type": "integer", "constraints": [{"greater_than": 0}, {"less_than": 10}]})
    assert isinstance(number, forms.IntegerField) and number.required
    assert (number.widget.attrs["min"], number.widget.attrs["max"]) == (1, 9)
    ratio = input_field("r", {"type": "float", "default": 0.5, "constraints": [{"in_range": [0, 1]}]})
    assert isinstance(ratio, forms.FloatField) and not ratio.required and ratio.initial == 0.5
    assert (ratio.widget.attrs["min"], ratio.widget.attrs["max"], ratio.widget.attrs["step"]) == (0, 1, "any")
    choice = input_field("c", {"type": "string", "default": "b", "constraints": [{"valid_values": ["a", "b"]}]})
    assert isinstance(choice, forms.ChoiceField) and [v for v, _ in list(choice.choices)] == ["", "a", "b"]  # type: ignore[arg-type]
    flag = input_field("f", {"type": "boolean", "default": False})
    assert isinstance(flag, forms.ChoiceField) and flag.initial == "false"
    listing = input_field("l", {"type": "list", "default": ["x", "y"]})
    assert isinstance(listing.widget, forms.Textarea) and listing.initial == "- x\n- y"
    text = input_field("t", {"type": "string", "constraints": [{"pattern": "[a-z]+"}, {"min_length": 2}]})
    assert (text.widget.attrs["pattern"], text.widget.attrs["minlength"]) == ("[a-z]+", 2)
    size = input_field("s", {"type": "scalar-unit.size", "default": "64 MB"})
    assert size.widget.attrs["placeholder"] == "512 MB" and size.initial == "64 MB"
    secret = input_field("p", {"type": "string", "secret": True, "default": None, "has_default": True})
    assert isinstance(secret.widget, forms.PasswordInput) and not secret.required and secret.initial is None
    assert "between 0 and 1" in str(ratio.help_text)
    assert input_field("i", {"type": "integer"}).widget.attrs["step"] == 1


def test_my_services_follow_the_organization_acted_for(
    mallory: Any, bob: Any, subscription: Subscription, published_version: ServiceVersion
) -> None:
    girona = Organization.objects.get(slug="girona")
    services.subscription_create(
        actor=actor(mallory), subscriber=girona, version=published_version, name="girona-forms", inputs={}
    )
    MembershipFactory.create(user=mallory, organization=subscription.subscriber, role=Membership.Role.VIEWER)
    client = client_of(mallory)
    url = reverse("portal:subscriptions")
    client.post(reverse("portal:organization-switch"), {"organization": girona.pk})
    listed = text_of(by_id(client.get(url), "main"))
    assert "girona-forms" in listed and "forms" not in listed.replace("girona-forms", "")
    client.post(reverse("portal:organization-switch"), {"organization": subscription.subscriber_id})
    listed = text_of(by_id(client.get(url), "main"))
    assert "girona-forms" not in listed and "forms" in listed
    # A viewer of Barcelona reads its subscription but may not change it.
    assert client.get(reverse("portal:subscription", args=[subscription.pk])).status_code == 200
    refused = client.post(reverse("portal:subscription-unsubscribe", args=[subscription.pk]), follow=True)
    assert "You need to be administrator or editor of City of Barcelona" in refused.content.decode()
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.ACTIVE


def test_the_health_of_each_part_is_shown(bob: Any, subscription: Subscription) -> None:
    assert subscription.deployment is not None
    DeploymentHealth.objects.create(
        deployment=subscription.deployment,
        health=DeploymentHealth.Health.DEGRADED,
        nodes={"web": {"desired": 2, "running": 1, "restarts": 3, "last_error": "exit code 137 <oom>"}},
        checked_at=timezone.now(),
    )
    page = client_of(bob).get(reverse("portal:subscription", args=[subscription.pk]))
    health = text_of(by_id(page, "health"))
    assert "1 of 2" in health and "3" in health and "exit code 137 <oom>" in health
    assert "exit code 137 &lt;oom&gt;" in page.content.decode()
    assert "Degraded" in page.content.decode()


def test_a_monitoring_store_that_does_not_answer_leaves_the_rest_of_the_page(
    bob: Any, subscription: Subscription, settings: Any
) -> None:
    settings.ELASTICSEARCH_URL = "http://127.0.0.1:9"  # nothing listens there: Elasticsearch is down
    get_store.cache_clear()
    try:
        page = client_of(bob).get(reverse("portal:subscription", args=[subscription.pk]))
    finally:
        get_store.cache_clear()
    assert page.status_code == 200
    assert "The figures cannot be read right now" in text_of(by_id(page, "charts"))
    assert "The log lines cannot be read right now" in text_of(by_id(page, "log-lines"))
    assert "Settings" in page.content.decode()
