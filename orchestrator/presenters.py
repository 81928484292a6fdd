"""How a deployment reads in JSON: one shape for the CLI and the API."""

from __future__ import annotations

from typing import Any

from orchestrator.engine import current_steps
from orchestrator.models import Deployment


def deployment_dict(deployment: Deployment) -> dict[str, Any]:
    steps = current_steps(deployment)
    return {
        "id": deployment.pk,
        "name": deployment.name,
        "target": deployment.target.name,
        "state": deployment.state,
        "operation": deployment.operation,
        "error": deployment.error,
        "outputs": deployment.outputs,
        "created_at": deployment.created_at.isoformat(),
        "finished_at": deployment.finished_at.isoformat() if deployment.finished_at else None,
        "steps": [
            {
                "key": s.key,
                "kind": s.kind,
                "node": s.node or None,
                "state": s.state,
                "summary": s.summary,
                "requires": s.requires,
                "attempts": s.attempts,
                "error": s.error,
                "started_at": s.started_at.isoformat() if s.started_at else None,
                "finished_at": s.finished_at.isoformat() if s.finished_at else None,
            }
            for s in steps
        ],
    }
