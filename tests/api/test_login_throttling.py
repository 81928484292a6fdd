"""Guessing passwords is slow: the token endpoint and the login page lock out by username and by address."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import DEMO_PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small_limits(settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 5


def token(client: APIClient, username: str, password: str, address: str = "10.9.0.1") -> Any:
    return client.post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json", REMOTE_ADDR=address
    )


def login(client: Client, username: str, password: str, address: str = "10.9.0.1") -> Any:
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_wrong_passwords_to_the_token_endpoint_lock_the_account_out(bob: Any, alice: Any) -> None:
    client = APIClient()
    answers = [token(client, "bob", f"wrong-{n}").status_code for n in range(8)]
    assert answers[:4] == [400] * 4
    assert 429 in answers
    locked = token(client, "bob", DEMO_PASSWORD)
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
    assert "Try again in" in locked.json()["detail"]
    # the lockout is the account's and this address's, not everyone's
    assert token(APIClient(), "alice", DEMO_PASSWORD, address="10.9.0.2").status_code == 200


def test_a_right_password_after_a_few_wrong_ones_works_and_resets_the_count(bob: Any) -> None:
    client = APIClient()
    for n in range(3):
        assert token(client, "bob", f"wrong-{n}").status_code == 400
    answer = token(client, "bob", DEMO_PASSWORD)
    assert answer.status_code == 200, answer.content
    assert answer.json()["token"]


def test_the_token_endpoint_limits_each_address_whatever_username_it_tries(db: None, settings: Any) -> None:
    client = APIClient()
    statuses = [token(client, f"nobody{n}", "x", address="10.9.0.3").status_code for n in range(40)]
    assert statuses[0] == 400
    assert statuses[-1] == 429


def test_wrong_passwords_on_the_login_page_lock_out_with_a_page(bob: Any, alice: Any) -> None:
    client = Client()
    statuses = [login(client, "bob", f"wrong-{n}").status_code for n in range(6)]
    assert statuses[0] == 200  # the form again, with its error
    assert statuses[-1] == 429
    page = login(client, "bob", DEMO_PASSWORD)
    assert page.status_code == 429
    assert int(page["Retry-After"]) > 0
    assert b"Too many attempts" in page.content
    # another person from another address logs in as usual
    assert login(Client(), "alice", DEMO_PASSWORD, address="10.9.0.9").status_code == 302


def test_the_login_page_locks_out_an_address_trying_many_usernames(db: None) -> None:
    client = Client()
    statuses = [login(client, f"nobody{n}", "x", address="10.9.0.4").status_code for n in range(6)]
    assert statuses[-1] == 429
