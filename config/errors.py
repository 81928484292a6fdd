"""The one error type every app raises for a person to read.

Services raise AgoraError subclasses; the API's exception handler turns them
into JSON with the code and HTTP status, the portal into a message, the CLI
into a line on stderr. No traceback ever reaches a person.
"""

from typing import Any


class AgoraError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class NotFound(AgoraError):
    code = "not_found"
    http_status = 404


class PermissionDenied(AgoraError):
    code = "permission_denied"
    http_status = 403


class InvalidState(AgoraError):
    """The object is not in a state that allows this action."""

    code = "invalid_state"
    http_status = 409


class ValidationFailed(AgoraError):
    code = "validation_failed"
    http_status = 400


class TooLarge(AgoraError):
    code = "too_large"
    http_status = 413
