"""The organization a signed-in person is acting for, kept in the session.

A person may belong to several organizations (a consultant working for two
municipalities, a publisher who is also an operator). Every portal page acts
for one of them: the one picked with the switcher in the header, else the
first by name. Pages call these helpers; nothing else reads the session key.

    from portal.context import current_membership, current_organization, require_membership

    organization = current_organization(request)       # Organization | None (anonymous, or no membership)
    membership = require_membership(request, kinds=(Organization.Kind.PUBLISHER,), roles=WRITE_ROLES)

The result is cached on the request, so calling them several times costs one query.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import Http404, HttpRequest

from catalogue.models import Membership, Organization

SESSION_KEY = "portal_organization_id"
_CACHE_ATTR = "_portal_memberships"


def memberships(request: HttpRequest) -> list[Membership]:
    """The signed-in person's memberships with their organizations, by organization name."""
    cached: list[Membership] | None = getattr(request, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    if not request.user.is_authenticated:
        result: list[Membership] = []
    else:
        result = list(
            Membership.objects.filter(user_id=request.user.pk)
            .select_related("organization")
            .order_by("organization__name", "organization_id")
        )
    setattr(request, _CACHE_ATTR, result)
    return result


def current_membership(request: HttpRequest) -> Membership | None:
    """The membership of the organization the person acts for, or None."""
    mine = memberships(request)
    if not mine:
        return None
    chosen = request.session.get(SESSION_KEY)
    for membership in mine:
        if membership.organization_id == chosen:
            return membership
    return mine[0]


def current_organization(request: HttpRequest) -> Organization | None:
    """The organization the person acts for: the one chosen in the switcher, else their first."""
    membership = current_membership(request)
    return membership.organization if membership is not None else None


def switch_organization(request: HttpRequest, organization_id: int) -> Organization | None:
    """Makes the person act for one of their organizations; None (and no change) if not theirs."""
    for membership in memberships(request):
        if membership.organization_id == organization_id:
            request.session[SESSION_KEY] = organization_id
            return membership.organization
    return None


def require_membership(
    request: HttpRequest,
    *,
    kinds: Iterable[str] | None = None,
    roles: Iterable[str] | None = None,
) -> Membership:
    """The current membership if its organization is of one of `kinds` and its role one of `roles`.

    Otherwise 404, as for any object of another organization: the page does not exist for them.
    Views should be decorated with @login_required first so anonymous people are sent to log in.
    """
    membership = current_membership(request)
    if membership is None:
        raise Http404("No organization")
    if kinds is not None and membership.organization.kind not in set(kinds):
        raise Http404("Not for this kind of organization")
    if roles is not None and membership.role not in set(roles):
        raise Http404("Not with this role")
    return membership


def is_operator(request: HttpRequest) -> bool:
    """Whether the person operates the platform (same rule as catalogue.selectors.is_operator, no query)."""
    if getattr(request.user, "is_superuser", False):
        return True
    return any(m.organization.kind == Organization.Kind.OPERATOR for m in memberships(request))


def portal(request: HttpRequest) -> dict[str, Any]:
    """Template context processor: the organization switcher's data, read only when a page uses it."""
    return {
        "portal_memberships": lambda: memberships(request),
        "current_membership": lambda: current_membership(request),
        "current_organization": lambda: current_organization(request),
        "portal_is_operator": lambda: is_operator(request),
    }
