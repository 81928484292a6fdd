"""Helpers shared by the deployment commands."""

from __future__ import annotations

import time
from typing import Any

import yaml
from django.core.management.base import CommandError

from config.errors import AgoraError
from orchestrator.models import Deployment


def parse_inputs(pairs: list[str]) -> dict[str, Any]:
    """NAME=VALUE pairs; values are read as YAML scalars, so 3 is a number and true a boolean."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise CommandError(f"--input takes NAME=VALUE; got {pair!r}.")
        try:
            values[name] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            values[name] = raw
        if isinstance(values[name], dict | list):
            values[name] = raw
    return values


def agora_error(exc: AgoraError) -> CommandError:
    lines = [exc.message]
    details = exc.details
    if isinstance(details, dict) and "problems" in details:
        lines += [f"  {p.get('line') or '-'}: {p['severity']}: {p['message']}" for p in details["problems"]]
    elif isinstance(details, dict):
        lines += [f"  {k}: {v}" for k, v in details.items()]
    return CommandError("\n".join(lines))


def wait_for(deployment: Deployment, *, settled: set[str], timeout: float) -> Deployment:
    """Polls the deployment until its state is one of `settled`."""
    deadline = time.monotonic() + timeout
    while True:
        deployment.refresh_from_db()
        if deployment.state in settled:
            return deployment
        if time.monotonic() > deadline:
            raise CommandError(f"Deployment {deployment.pk} is still {deployment.state} after {timeout:g} s.")
        time.sleep(0.5)
