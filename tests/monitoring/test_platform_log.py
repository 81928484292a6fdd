"""The platform's own events become log lines: straight into the store, or through fluent-logger
to a Fluentd receiver when FLUENTD_HOST is set; only once their transaction commits; and a
failure to log never breaks the caller."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import transaction

from catalogue.services import SYSTEM, audit
from crane.models import Target
from monitoring.models import LogLine
from monitoring.platform_log import FLUSH_SECONDS, PlatformLogHandler
from orchestrator import engine
from orchestrator.models import Deployment
from tests.monitoring.test_fluentd import eventually, serving


@pytest.fixture
def deployment(transactional_db: None) -> Deployment:
    target = Target.objects.create(name=f"platform-{uuid.uuid4().hex[:8]}", public_host="127.0.0.1")
    return Deployment.objects.create(
        owner="barcelona", target=target, template=b"", template_filename="t.yaml", template_sha256="0" * 64
    )


def platform_lines() -> list[tuple[str, str, str, str, str]]:
    return [
        (line.deployment_id, line.source, line.stream, line.level, line.message)
        for line in LogLine.objects.order_by("time", "id")
    ]


def test_a_deployment_event_is_stored_once_its_transaction_commits(deployment: Deployment) -> None:
    with transaction.atomic():
        engine.event(deployment, "step.failed", "Step web failed: image not found", level="error")
        assert platform_lines() == []  # not before the commit
    assert platform_lines() == [
        (deployment.pk, "platform", "agora.events", "error", "Step web failed: image not found"),
    ]


def test_an_event_whose_transaction_rolls_back_leaves_no_line(deployment: Deployment) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        engine.event(deployment, "deployment.running", "Deployment is running")
        raise RuntimeError("the caller fails after the event")
    assert platform_lines() == []


def test_an_audit_event_is_stored_with_its_deployment(deployment: Deployment) -> None:
    audit(actor=SYSTEM, action="deployment.retried", obj=deployment, organization=None, secret_input="s3cret")
    assert platform_lines() == [
        (
            deployment.pk,
            "platform",
            "agora.audit",
            "info",
            f"deployment.retried: deployment {deployment.pk} by the platform",
        ),
    ]
    assert "s3cret" not in LogLine.objects.get().message


def test_with_fluentd_host_events_go_through_fluent_logger_to_the_receiver(
    deployment: Deployment, settings: Any
) -> None:
    with serving() as receiver:
        settings.FLUENTD_HOST = "127.0.0.1"
        settings.FLUENTD_PORT = receiver.port
        with _only_handler("agora.events", PlatformLogHandler()) as handler:
            engine.event(deployment, "deployment.running", "Deployment is running")
            logging.getLogger("agora.events").warning("A platform warning without deployment")
            handler.close()  # sends what is queued
        eventually(lambda: len(platform_lines()) == 2, "both events received and stored")
    assert platform_lines() == [
        (deployment.pk, "platform", "agora.events", "info", "Deployment is running"),
        ("", "platform", "agora.events", "warning", "A platform warning without deployment"),
    ]


def test_a_record_that_cannot_be_logged_does_not_break_the_caller(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = PlatformLogHandler()
    broken = logging.LogRecord("agora.events", logging.INFO, __file__, 1, "%d steps", ("not a number",), None)
    handler.handle(broken)  # straight to the handler: pytest's own log capture would raise on this record
    assert "--- Logging error ---" in capsys.readouterr().err
    fine = logging.LogRecord("agora.events", logging.INFO, __file__, 1, "Deployment is running", None, None)
    fine.deployment_id = deployment.pk
    handler.handle(fine)
    assert platform_lines() == [(deployment.pk, "platform", "agora.events", "info", "Deployment is running")]


def test_closing_does_not_wait_for_a_fluentd_that_never_reads(transactional_db: None, settings: Any) -> None:
    deaf = socket.create_server(("127.0.0.1", 0))  # accepts connections in the kernel, never reads them
    settings.FLUENTD_HOST = "127.0.0.1"
    settings.FLUENTD_PORT = deaf.getsockname()[1]
    handler = PlatformLogHandler()
    try:
        for _ in range(40):  # more than the socket buffers hold: the sender blocks, times out, retries
            handler.handle(logging.LogRecord("agora.events", logging.INFO, __file__, 1, "x" * 1_000_000, None, None))
        started = time.monotonic()
        handler.close()
        assert time.monotonic() - started < FLUSH_SECONDS + 2
    finally:
        deaf.close()


@contextmanager
def _only_handler(name: str, handler: logging.Handler) -> Iterator[logging.Handler]:
    """The logger's handlers replaced by this one for the block (the configured one would store the record too)."""
    logger = logging.getLogger(name)
    saved = list(logger.handlers)
    logger.handlers = [handler]
    try:
        yield handler
    finally:
        logger.handlers = saved
        handler.close()
