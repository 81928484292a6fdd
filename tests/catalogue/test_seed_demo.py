from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from catalogue.models import AuditEvent, Service, ServiceVersion

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_prints_passwords() -> None:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "alice" in out.getvalue() and "agora-demo-alice" in out.getvalue()
    counts = (Service.objects.count(), ServiceVersion.objects.count(), AuditEvent.objects.count())
    assert counts[0] == 3
    assert ServiceVersion.objects.filter(state="published").count() == 3
    call_command("seed_demo", stdout=StringIO())
    assert (Service.objects.count(), ServiceVersion.objects.count(), AuditEvent.objects.count()) == counts


def test_demo_people_can_log_in(client: object) -> None:
    from django.test import Client

    call_command("seed_demo", stdout=StringIO())
    # Through the login page: the lockout backend needs the request that Client.login() does not give.
    answer = Client().post("/accounts/login/", {"username": "bob", "password": "agora-demo-bob"})
    assert answer.status_code == 302
