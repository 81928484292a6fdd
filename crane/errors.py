"""Crane's errors: what went wrong on a target, in words a person can act on.

Every Docker or connection error leaves crane as one of these. `transient` tells
the orchestrator whether retrying the same call later may succeed (the daemon
was unreachable, busy or restarting) or whether something must change first
(the image does not exist, the spec is invalid, a name is taken).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import docker.errors  # type: ignore[import-untyped]
import requests.exceptions

from config.errors import AgoraError


class CraneError(AgoraError):
    code = "crane_error"
    http_status = 502
    transient = False


class TargetUnreachable(CraneError):
    code = "target_unreachable"
    http_status = 503
    transient = True


class DockerUnavailable(CraneError):
    """The daemon answered but could not do it now (5xx, swarm not ready, timeout)."""

    code = "docker_unavailable"
    http_status = 503
    transient = True


class DockerRefused(CraneError):
    """The daemon refused the call for a reason that retrying will not change."""

    code = "docker_refused"


class ImageNotFound(CraneError):
    code = "image_not_found"
    http_status = 404


class InvalidSpec(CraneError):
    code = "invalid_spec"
    http_status = 400


class NameConflict(CraneError):
    code = "name_conflict"
    http_status = 409


class PolicyViolation(CraneError):
    """A setting Agora's security policy refuses; raised before Docker is called."""

    code = "policy_violation"
    http_status = 400

    def __init__(self, message: str, *, node: str, setting: str, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.node = node
        self.setting = setting


class CapacityExceeded(CraneError):
    code = "capacity_exceeded"
    http_status = 409


class PortsExhausted(CapacityExceeded):
    code = "ports_exhausted"


class NodeUnhealthy(CraneError):
    """A node's tasks keep failing (crashing, or failing their health check)."""

    code = "node_unhealthy"

    def __init__(self, message: str, *, node: str, last_error: str) -> None:
        super().__init__(message)
        self.node = node
        self.last_error = last_error


class HealthTimeout(NodeUnhealthy):
    """A node was not running and healthy in time."""

    code = "health_timeout"
    http_status = 504


# Phrases of daemons and of the network that mean "try again later".
_TRANSIENT = re.compile(
    r"rpc error: code = (unavailable|deadlineexceeded|canceled)|connection refused|timed? ?out|"
    r"i/o timeout|temporarily unavailable|no leader|leader election|context deadline exceeded|"
    r"update out of sequence|is being removed|removal of .* is already in progress",
    re.IGNORECASE,
)
_IMAGE_MISSING = re.compile(
    r"no such image|manifest unknown|pull access denied|repository does not exist|not found: manifest|"
    r"manifest for .* not found",
    re.IGNORECASE,
)
_HINTS = (
    (
        re.compile(r"could not find an available, non-overlapping ipv4 address pool", re.IGNORECASE),
        "The Docker host has run out of network address pools; widen default-address-pools in its daemon.json.",
    ),
    (
        re.compile(r"port is already allocated|address already in use", re.IGNORECASE),
        "Another process on the host holds a port of the target's published-port range; narrow the range or "
        "free the port.",
    ),
    (
        re.compile(r"this node is not a swarm manager|not part of a swarm", re.IGNORECASE),
        "The target is registered in swarm mode but its endpoint is not a swarm manager; point it at a manager "
        "or switch the target to engine mode.",
    ),
    (
        re.compile(r"dial tcp|no such host|tls handshake timeout", re.IGNORECASE),
        "The target's daemon cannot reach the image's registry; check its network and DNS, or load the image onto "
        "the target.",
    ),
    (
        re.compile(r"network .*not found", re.IGNORECASE),
        "Call ensure_network for the deployment before its services.",
    ),
    (
        re.compile(r"install paramiko", re.IGNORECASE),
        "ssh:// targets need the paramiko package on the Agora host.",
    ),
)


_REASON = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)|(No such file or directory)|(Connection refused)|(timed out)")


def _unreachable(target: str, detail: str, endpoint: str | None = None) -> TargetUnreachable:
    # The SDK nests the cause deep inside requests' and urllib3's messages; say the cause.
    match = _REASON.search(detail)
    reason = next((g for g in match.groups() if g), detail) if match else detail[:300]
    return TargetUnreachable(
        f'Target "{target}"{f" at {endpoint}" if endpoint else ""} does not answer: {reason.strip()}. Check that its '
        "Docker daemon runs and that its endpoint, network path and TLS settings are right."
    )


def _docker_explanation(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    text = str(explanation or exc).strip()
    return text or exc.__class__.__name__


def translate(exc: BaseException, *, target: str, doing: str, endpoint: str | None = None) -> CraneError:
    """The CraneError for a Docker SDK, requests or socket error raised while `doing` on `target`."""
    if isinstance(exc, CraneError):
        return exc
    detail = _docker_explanation(exc)
    hint = next((text for pattern, text in _HINTS if pattern.search(detail)), "")
    message = f'Target "{target}": could not {doing}: {detail}' + (f" {hint}" if hint else "")
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout | ConnectionError):
        return _unreachable(target, detail, endpoint)
    if isinstance(exc, docker.errors.ImageNotFound) or _IMAGE_MISSING.search(detail):
        return ImageNotFound(message)
    if isinstance(exc, docker.errors.APIError):
        status = exc.status_code or 0
        if status >= 500 or _TRANSIENT.search(detail):
            return DockerUnavailable(message)
        if status == 409:
            return NameConflict(message)
        if status == 400:
            return InvalidSpec(message)
        return DockerRefused(message)
    if isinstance(exc, docker.errors.DockerException):
        # The SDK wraps connection failures while it asks the daemon for its API version.
        if "error while fetching server api version" in detail.lower():
            return _unreachable(target, detail.split(":", 1)[-1], endpoint)
        return InvalidSpec(message)
    if isinstance(exc, OSError | TimeoutError):
        return _unreachable(target, detail, endpoint)
    return DockerRefused(message)


@contextmanager
def docker_errors(target: str, doing: str, *, endpoint: str | None = None) -> Iterator[None]:
    """Turn whatever the SDK raises inside the block into a CraneError."""
    try:
        yield
    except CraneError:
        raise
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise translate(exc, target=target, doing=doing, endpoint=endpoint) from exc


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, docker.errors.NotFound)
