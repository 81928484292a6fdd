"""Template helpers of the portal: Markdown, state badges, input constraints in words."""

from __future__ import annotations

import re
from typing import Any

from django import template
from django.http import QueryDict
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from portal.markdown import render_markdown

register = template.Library()

# The badge colour repeats what the text says (never colour alone).
_BADGE = {
    "running": "ok",
    "healthy": "ok",
    "done": "ok",
    "published": "ok",
    "active": "ok",
    "resolved": "ok",
    "deploying": "info",
    "updating": "info",
    "pending": "info",
    "queued": "info",
    "starting": "info",
    "submitted": "info",
    "undeploying": "warn",
    "degraded": "warn",
    "deprecated": "warn",
    "draft": "warn",
    "failed": "bad",
    "unhealthy": "bad",
    "rejected": "bad",
    "firing": "bad",
}


@register.filter
def markdown(text: str) -> SafeString:
    return render_markdown(text)


@register.filter
def badge_class(state: str) -> str:
    kind = _BADGE.get(str(state))
    return f"badge badge-{kind}" if kind else "badge"


@register.filter
def constraint_text(constraint: dict[str, Any]) -> str:
    """One TOSCA constraint ({"in_range": [1, 5]}) in words."""
    parts = []
    for op, arg in constraint.items():
        if op == "in_range" and isinstance(arg, list | tuple) and len(arg) == 2:
            parts.append(_("between %(low)s and %(high)s") % {"low": arg[0], "high": arg[1]})
        elif op == "valid_values" and isinstance(arg, list | tuple):
            parts.append(_("one of %(values)s") % {"values": ", ".join(str(a) for a in arg)})
        else:
            words = {
                "equal": _("equal to %(arg)s"),
                "greater_than": _("greater than %(arg)s"),
                "greater_or_equal": _("at least %(arg)s"),
                "less_than": _("less than %(arg)s"),
                "less_or_equal": _("at most %(arg)s"),
                "length": _("exactly %(arg)s long"),
                "min_length": _("at least %(arg)s long"),
                "max_length": _("at most %(arg)s long"),
                "pattern": _("matching %(arg)s"),
            }
            parts.append(words.get(op, f"{op} %(arg)s") % {"arg": arg})
    return "; ".join(parts)


@register.simple_tag(takes_context=True)
def query_with(context: dict[str, Any], **changes: Any) -> str:
    """The current query string with some parameters changed (None or "" removes them)."""
    request = context["request"]
    query: QueryDict = request.GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            query.pop(key, None)
        else:
            query[key] = str(value)
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def highlight(text: str, words: str) -> SafeString:
    """The text escaped, with each occurrence of the searched words marked (<mark>)."""
    terms = [re.escape(w) for w in (words or "").split() if w]
    if not terms:
        return conditional_escape(text)
    pattern = re.compile("(" + "|".join(terms) + ")", re.IGNORECASE)
    parts = pattern.split(str(text))
    # split() with one group alternates: text, match, text, match, ...
    return mark_safe(  # noqa: S308 - every part is escaped
        "".join(
            format_html("<mark>{}</mark>", part) if index % 2 else conditional_escape(part)
            for index, part in enumerate(parts)
        )
    )
