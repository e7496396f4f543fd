"""Why a webhook delivery is turned away, as Railyard errors.

Both derive from ``controller.errors`` so anything that maps Railyard errors
to HTTP answers keeps working; the router answers them itself with the
``rejected: <reason>`` outcome body every sender sees.

    AuthError
    └── SignatureRejected     signature (or GitLab token) missing or wrong: 401
    ValidationError
    └── MalformedPayload      body is not JSON, or not the shape the event needs: 400
"""

from __future__ import annotations

from controller.errors import AuthError, ValidationError


class SignatureRejected(AuthError):
    """The delivery is not signed with the app's webhook secret."""

    code = "bad_signature"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedPayload(ValidationError):
    """The signed body cannot be read as the event its headers announce."""

    status_code = 400
    code = "malformed_payload"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
