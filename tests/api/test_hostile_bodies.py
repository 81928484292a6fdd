"""Any body gets an answer with a sentence: deep JSON is a 400, never a RecursionError's 500."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from catalogue.models import Organization
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def nested(depth: int) -> str:
    return '{"name": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [990, 100_000])
def test_deeply_nested_json_to_the_token_endpoint_is_a_400_without_login(depth: int) -> None:
    answer = APIClient().post("/api/v1/auth/token/", nested(depth), content_type="application/json")
    assert answer.status_code == 400
    assert "nests deeper than 64 levels" in answer.json()["detail"]


@pytest.mark.parametrize("depth", [990, 100_000])
def test_deeply_nested_json_to_an_api_write_is_a_400_and_changes_nothing(charlie: Any, depth: int) -> None:
    before = Organization.objects.count()
    answer = client_for(charlie).post("/api/v1/organizations/", nested(depth), content_type="application/json")
    assert answer.status_code == 400
    assert "nests deeper than 64 levels" in answer.json()["detail"]
    assert Organization.objects.count() == before


def test_json_at_a_sane_depth_and_brackets_in_strings_are_read(charlie: Any) -> None:
    body = '{"name": "Comune [[[[' + "[" * 100 + '", "kind": "public_administration", "email": ""}'
    answer = client_for(charlie).post("/api/v1/organizations/", body, content_type="application/json")
    assert answer.status_code == 201, answer.content


@pytest.mark.parametrize(
    ("body", "words"),
    [(b'{"name": NaN}', "not valid JSON"), (b"\xff\xfe{", "not valid utf-8"), (b'{"name": ', "not valid JSON")],
)
def test_malformed_bodies_get_a_sentence(charlie: Any, body: bytes, words: str) -> None:
    answer = client_for(charlie).post("/api/v1/organizations/", body, content_type="application/json")
    assert answer.status_code == 400
    assert words in answer.json()["detail"]


@pytest.mark.parametrize(
    "path",
    ["/api/v1/deployments/%00/", "/api/v1/services/?q=%00", "/api/v1/organizations/a%00b/", "/api/v1/targets/%00/"],
)
def test_a_nul_character_in_the_address_is_a_400(charlie: Any, path: str) -> None:
    answer = client_for(charlie).get(path)
    assert answer.status_code == 400
    assert "NUL character" in answer.json()["detail"]


@pytest.mark.parametrize("body", ['{"kind": "cpu", "deployment": "a\\u0000"}', '{"kind": "cpu\\u0000"}'])
def test_a_nul_character_in_a_json_body_is_a_400(charlie: Any, body: str) -> None:
    answer = client_for(charlie).post("/api/v1/alert-rules/", body, content_type="application/json")
    assert answer.status_code == 400
    assert "NUL character" in answer.json()["detail"]
