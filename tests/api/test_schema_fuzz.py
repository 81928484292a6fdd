"""Schemathesis walks every operation of /api/schema/ as bob (a subscriber) with a few generated requests each,
through the whole WSGI stack, and every answer must be one the schema documents: no server error, a documented
status and content type, a body and headers that match. bench/api_fuzz.py runs the same with every check
(also whether valid input is accepted and invalid refused), more examples and the stateful phase.

Left out here, as the bench reports them and they are not documentation: NUL characters (PostgreSQL refuses
them in lookups, a 500 being fixed at the request's edge), and the input checks (a schema cannot say which
slugs exist, so valid-looking references are refused with 400).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.openapi import from_wsgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from catalogue.models import Subscription

pytestmark = pytest.mark.django_db

APP = get_wsgi_application()
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"allow-x00": False, "database": "none", "max-examples": 3},
        "phases": {"stateful": {"enabled": False}},
    }
)


# Loaded when the module is collected, from the app itself (generating the schema reads no database).
# (schemathesis.pytest.from_fixture would load it per test, but reads a private attribute pytest 9 dropped.)
schema = from_wsgi("/api/schema/", APP, config=CONFIG)


@pytest.fixture
def bob_token(bob: Any, subscription: Subscription, settings: Any) -> Iterator[str]:
    """bob's API token; his organization has a subscription (a deployment, its events) for the cases to meet."""
    settings.AGORA_QUEUE = "agora-test-schema-fuzz"  # the subscription's steps are never worked: no worker
    request_started.disconnect(close_old_connections)  # the requests run in the test's transaction
    request_finished.disconnect(close_old_connections)
    yield Token.objects.get_or_create(user=bob)[0].key
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_every_answer_is_one_the_schema_documents(case: schemathesis.Case, bob_token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Token {bob_token}"}, checks=CHECKS)
