"""Crane's settings, with the defaults that make the embedded mode work.

Read through django.conf.settings so that config/settings.py stays the one place
where values come from the environment; every name here has a default, so none
of them has to be set.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings


def _get(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def default_cpus() -> float:
    """CPU limit of a node whose template sets none (and the target sets no default)."""
    return float(_get("CRANE_DEFAULT_CPUS", 1.0))


def default_memory() -> int:
    """Memory limit in bytes of a node whose template sets none."""
    return int(_get("CRANE_DEFAULT_MEMORY", 512 * 1024 * 1024))


def pids_limit() -> int:
    """Processes per container: a fork bomb in one tenant must not starve the host."""
    return int(_get("CRANE_PIDS_LIMIT", 1024))


def max_replicas() -> int:
    return int(_get("CRANE_MAX_REPLICAS", 20))


def port_range() -> tuple[int, int]:
    """Published ports of a target registered without a range (below Linux's ephemeral ports)."""
    start, end = _get("CRANE_PORT_RANGE", (30000, 30999))
    return int(start), int(end)


def docker_timeout() -> float:
    """Seconds one Docker API call may take (connect and read)."""
    return float(_get("CRANE_DOCKER_TIMEOUT", 30))


def check_timeout() -> float:
    """Seconds `crane check` waits for a target before calling it unreachable."""
    return float(_get("CRANE_CHECK_TIMEOUT", 3))


def build_timeout() -> float:
    """Seconds an image pull or build may take."""
    return float(_get("CRANE_BUILD_TIMEOUT", 900))


def default_target_name() -> str:
    return str(_get("CRANE_DEFAULT_TARGET", "local"))


def local_endpoint() -> str:
    """The local engine: DOCKER_HOST as the docker CLI reads it, else the default socket."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def local_public_host() -> str:
    return str(_get("CRANE_PUBLIC_HOST", "localhost"))
