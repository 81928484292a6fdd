from rest_framework.request import Request

from catalogue.services import Actor


def actor_of(request: Request) -> Actor:
    """Who acts, and from which address, for the audit trail."""
    return Actor(user=request.user, ip=request.META.get("REMOTE_ADDR"))
