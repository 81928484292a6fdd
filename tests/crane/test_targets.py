"""Targets: the local engine registered on first use, fast and clear failures, TLS keys kept secret."""

from __future__ import annotations

import datetime
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management import call_command
from django.core.management.base import CommandError

from config.crypto import decrypt_json
from crane import conf, driver, services, targets
from crane.errors import InvalidSpec, TargetUnreachable
from crane.models import PublishedPort, Target
from tests.crane.conftest import SWARM, make_target, needs_docker

pytestmark = pytest.mark.django_db

UNREACHABLE = ["tcp://127.0.0.1:1", "unix:///nonexistent/agora/docker.sock"]


def _key_and_certificate() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agora-test-client")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a hung daemon."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


@needs_docker
@pytest.mark.docker
def test_local_engine_is_registered_once_on_first_use() -> None:
    assert not Target.objects.exists()
    target = targets.default_target()
    assert (target.name, target.endpoint) == ("local", conf.local_endpoint())
    assert target.mode == (Target.Mode.SWARM if SWARM else Target.Mode.ENGINE)
    assert target.state == Target.State.REACHABLE and target.docker_version
    assert targets.default_target().pk == target.pk
    assert Target.objects.count() == 1


def test_default_target_is_the_named_one_else_the_oldest(settings: Any) -> None:
    first = make_target(Target.Mode.ENGINE, name="first")
    make_target(Target.Mode.ENGINE, name="second")
    assert targets.default_target() == first
    settings.CRANE_DEFAULT_TARGET = "second"
    assert targets.default_target().name == "second"


@pytest.mark.parametrize("endpoint", UNREACHABLE)
def test_unreachable_target_fails_fast_with_a_clear_error(endpoint: str) -> None:
    target = make_target(Target.Mode.SWARM, endpoint=endpoint)
    started = time.monotonic()
    result = targets.target_check(target)
    assert time.monotonic() - started < 3
    assert result.state == Target.State.UNREACHABLE
    assert f'Target "{target.name}" at {endpoint} does not answer' in result.error
    target.refresh_from_db()
    assert (target.state, target.last_error) == (Target.State.UNREACHABLE, result.error)
    assert target.checked_at is not None

    started = time.monotonic()
    with pytest.raises(TargetUnreachable) as caught:
        driver.ensure_network(target, "d1")
    assert time.monotonic() - started < 3
    assert caught.value.transient is True
    assert "Connection refused" in caught.value.message or "No such file or directory" in caught.value.message


def test_hung_daemon_is_called_unreachable_within_the_check_timeout(silent_port: int, settings: Any) -> None:
    settings.CRANE_CHECK_TIMEOUT = 1.5
    target = make_target(Target.Mode.ENGINE, endpoint=f"tcp://127.0.0.1:{silent_port}")
    started = time.monotonic()
    result = targets.target_check(target)
    assert time.monotonic() - started < 4
    assert result.state == Target.State.UNREACHABLE
    assert "timed out" in result.error


@needs_docker
@pytest.mark.docker
def test_check_reports_version_swarm_and_free_ports() -> None:
    target = make_target(Target.Mode.SWARM if SWARM else Target.Mode.ENGINE)
    PublishedPort.objects.create(
        target=target, port=target.port_range_start, deployment="d1", node="web", target_port=80
    )
    result = targets.target_check(target)
    assert result.state == Target.State.REACHABLE, result.error
    assert result.docker_version and result.api_version
    assert result.free_ports == target.port_range_end - target.port_range_start
    if SWARM:
        assert result.swarm_role == "manager"
        assert result.managers >= 1 and result.nodes_ready >= 1 and result.nodes_down == 0
    target.refresh_from_db()
    assert target.docker_version == result.docker_version and target.swarm_managers == result.managers


def test_tls_key_is_encrypted_at_rest_and_never_shown() -> None:
    key, certificate = _key_and_certificate()
    target = make_target(Target.Mode.ENGINE, endpoint="tcp://127.0.0.1:1", tls_client_certificate=certificate)
    services.target_set_tls_key(target=target, key_pem=key)
    target.refresh_from_db()
    body = key.split("-----")[2].strip().splitlines()[0]
    assert target.has_tls_key
    assert body not in target.tls_client_key_encrypted
    assert decrypt_json(target.tls_client_key_encrypted)["pem"].strip() == key.strip()
    assert body not in repr(target) and body not in str(target)

    # The key reaches the TLS library through memory, and a closed port is still a clear, fast error.
    started = time.monotonic()
    with pytest.raises(TargetUnreachable, match="Connection refused"):
        targets.client_for(target)
    assert time.monotonic() - started < 3

    with pytest.raises(InvalidSpec, match="PEM private key"):
        services.target_set_tls_key(target=target, key_pem="not a key")
    services.target_set_tls_key(target=target, key_pem="")
    target.refresh_from_db()
    assert not target.has_tls_key


def test_admin_takes_a_new_key_and_never_shows_it(admin_client: Any) -> None:
    key, certificate = _key_and_certificate()
    body = key.split("-----")[2].strip().splitlines()[0]
    response = admin_client.post(
        "/admin/crane/target/add/",
        {
            "name": "azure-west",
            "provider": "Azure",
            "region": "westeurope",
            "public_host": "apps.example.org",
            "endpoint": "tcp://swarm.example.org:2376",
            "mode": "swarm",
            "tls_client_certificate": certificate,
            "new_tls_client_key": key,
            "port_range_start": 30000,
            "port_range_end": 30999,
            "labels": "{}",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    target = Target.objects.get(name="azure-west")
    assert decrypt_json(target.tls_client_key_encrypted)["pem"].strip() == key.strip()
    page = admin_client.get(f"/admin/crane/target/{target.pk}/change/").content.decode()
    assert "stored (encrypted)" in page
    assert body not in page and target.tls_client_key_encrypted not in page

    # A refused key is not echoed back either.
    refused = admin_client.post(
        f"/admin/crane/target/{target.pk}/change/",
        {
            "name": "azure-west",
            "public_host": "apps.example.org",
            "endpoint": "tcp://swarm.example.org:2376",
            "mode": "swarm",
            "new_tls_client_key": "-----BEGIN PRIVATE KEY-----\nSECRETISH\n-----END PRIVATE KEY-----",
            "port_range_start": 30000,
            "port_range_end": 30999,
            "labels": "{}",
        },
    ).content.decode()
    assert "PEM private key" in refused and "SECRETISH" not in refused


@needs_docker
@pytest.mark.docker
def test_command_lists_and_checks_targets(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("crane", "targets")
    assert "local" in capsys.readouterr().out  # registered on first use
    make_target(Target.Mode.ENGINE, name="dead", endpoint="tcp://127.0.0.1:1")

    call_command("crane", "check", "local")
    out = capsys.readouterr().out
    assert "local: reachable" in out and "Docker " in out and "free" in out

    started = time.monotonic()
    with pytest.raises(CommandError, match="1 target"):
        call_command("crane", "check")
    assert time.monotonic() - started < 5
    captured = capsys.readouterr()
    assert "dead: unreachable" in captured.err and "Connection refused" in captured.err

    call_command("crane", "targets")
    listing = capsys.readouterr().out
    assert "dead" in listing and "unreachable" in listing
    with pytest.raises(CommandError, match="No target named 'nowhere'"):
        call_command("crane", "check", "nowhere")
