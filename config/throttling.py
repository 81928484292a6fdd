"""The API's rates. DRF answers 429 with `Retry-After` when one is exceeded.

Counts live in Django's cache, which is per process (LocMemCache): with several web workers a
rate is per worker. That is deliberate: throttling must not make the API depend on Redis, which
may be down while the API keeps taking requests (decision 0012).
"""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class LoginAddressThrottle(SimpleRateThrottle):
    """Token requests per address, whatever username they try."""

    scope = "login"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUsernameThrottle(SimpleRateThrottle):
    """Token requests per attempted username, from any address."""

    scope = "login_user"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        username = request.data.get("username") if hasattr(request.data, "get") else None
        if not isinstance(username, str) or not username:
            return None
        return self.cache_format % {"scope": self.scope, "ident": username.strip().lower()[:150]}
