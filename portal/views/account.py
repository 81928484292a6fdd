"""The organization switcher."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.context import switch_organization


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or "/"
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"


@login_required
@require_POST
def organization_switch(request: HttpRequest) -> HttpResponse:
    try:
        organization_id = int(request.POST.get("organization", ""))
    except ValueError:
        organization_id = 0
    organization = switch_organization(request, organization_id)
    if organization is None:
        messages.error(request, _("You are not a member of that organization."))
    else:
        messages.success(request, _("You are now acting for %(name)s.") % {"name": organization.name})
    return HttpResponseRedirect(_safe_next(request))
