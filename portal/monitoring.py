"""A subscription's monitoring as the portal shows it: charts' data, a page of log lines, alerts.

Reads go through monitoring.reading (the same functions as the API); the caller has already
found the deployment among those the person may see.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.http import QueryDict
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from catalogue import selectors
from catalogue.selectors import AnyUser
from config.errors import AgoraError, ValidationFailed
from monitoring import reading
from monitoring.models import Alert
from monitoring.store import Line, LogQuery
from monitoring.store.base import LEVELS

log = logging.getLogger(__name__)

CHART_RANGES = ("1h", "1d")
LOG_LINES_SHOWN = 100
LOG_LEVELS = [
    ("debug", gettext_lazy("Debug and above")),
    ("info", gettext_lazy("Information and above")),
    ("warning", gettext_lazy("Warnings and above")),
    ("error", gettext_lazy("Errors and above")),
    ("critical", gettext_lazy("Critical only")),
]


def charts(deployment_id: str, range_name: str) -> dict[str, Any]:
    """What the charts need in the page: the latest figures (for the text) and how to draw each chart.

    The points come from the REST API (GET /api/v1/deployments/<id>/metrics/?range=...), the same
    answer API clients read; static/portal/charts.js fetches them and draws with uPlot.
    """
    try:
        latest = reading.latest_metrics(deployment_id)
    except AgoraError as exc:  # the store does not answer (Elasticsearch down): the rest of the page still shows
        log.warning("Monitoring store unavailable for %s: %s", deployment_id, exc.message)
        latest, error = {}, _("The figures cannot be read right now; try again in a moment.")
    else:
        error = ""
    cpu_now = [s["cpu_percent"] for s in latest.values() if s.get("cpu_percent") is not None]
    memory_now = [s["memory_bytes"] for s in latest.values() if s.get("memory_bytes") is not None]
    return {
        "range": range_name,
        "error": error,
        "url": reverse("deployment-metrics", args=[deployment_id]) + f"?range={range_name}",
        "cpu_now": sum(cpu_now) if cpu_now else None,
        "memory_now": sum(memory_now) if memory_now else None,
        "cpu_series": json.dumps(
            [
                {"label": _("CPU, average (% of one CPU)"), "stat": "avg", "metric": "cpu_percent"},
                {"label": _("CPU, peak"), "stat": "max", "metric": "cpu_percent"},
            ]
        ),
        "memory_series": json.dumps(
            [
                {"label": _("Memory, average"), "stat": "avg", "metric": "memory_bytes"},
                {"label": _("Memory, peak"), "stat": "max", "metric": "memory_bytes"},
                {"label": _("Memory limit"), "stat": "avg", "metric": "memory_limit"},
            ]
        ),
    }


@dataclass
class LogView:
    text: str = ""
    level: str = ""
    tail: bool = False
    before: str | None = None
    lines: list[Line] = field(default_factory=list)
    next_before: str | None = None
    error: str = ""

    def query_string(self, **changes: Any) -> str:
        params = {"q": self.text, "level": self.level, "tail": "1" if self.tail else "", "before": self.before or ""}
        params.update({k: v or "" for k, v in changes.items()})
        return urlencode({k: v for k, v in params.items() if v})

    @property
    def older_query_string(self) -> str:
        return self.query_string(before=self.next_before, tail="")


def log_view(deployment_id: str, params: QueryDict) -> LogView:
    """The log lines asked for: newest first from the store, shown oldest first (as a terminal does)."""
    view = LogView(
        text=params.get("q", "").strip()[:200],
        level=params.get("level", "") if params.get("level", "") in LEVELS else "",
        tail=params.get("tail") == "1",
        before=params.get("before") or None,
    )
    if view.tail:
        view.before = None  # a live tail follows the newest lines
    try:
        page = reading.logs(
            LogQuery(
                deployment_id=deployment_id,
                text=view.text,
                level=view.level,
                limit=LOG_LINES_SHOWN,
                before=view.before,
            )
        )
    except ValidationFailed as exc:  # a bad cursor or level: say so
        view.error = exc.message
        return view
    except AgoraError as exc:  # the store does not answer (Elasticsearch down)
        log.warning("Monitoring store unavailable for %s: %s", deployment_id, exc.message)
        view.error = str(_("The log lines cannot be read right now; try again in a moment."))
        return view
    view.lines = page.lines[::-1]
    view.next_before = page.next_before
    return view


def recent_alerts(user: AnyUser, deployment_id: str, limit: int = 20) -> list[Alert]:
    return list(selectors.alerts_visible_to(user).filter(deployment_id=deployment_id).order_by("-raised_at")[:limit])
