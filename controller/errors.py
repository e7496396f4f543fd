"""Railyard's one exception hierarchy.

Every error Railyard raises or maps from a foreign library derives from
``RailyardError``. The class decides what happens next: a *permanent* error is
recorded and never retried (the user must act); a *temporary* one is retried
with exponential backoff and jitter.

    RailyardError                 base; ``to_dict()`` is the API error body
    ├── PermanentError            recorded, not retried
    │   ├── ManifestError         paas.yaml is invalid (carries every issue found)
    │   ├── NotFoundError         a row or object does not exist (API: 404)
    │   ├── ConflictError         the request clashes with existing state (API: 409)
    │   ├── ValidationError       a request body or argument is wrong (API: 422)
    │   ├── AuthError             missing or bad credentials (API: 401)
    │   │   └── ForbiddenError    authenticated but not allowed (API: 403)
    │   └── SourceError           git: branch or file missing, auth failed
    └── TemporaryError            retried later
        ├── SourceUnavailable     git remote unreachable or timed out
        ├── RuntimeUnavailable    Docker engine unreachable or failing
        ├── RouterError           the proxy refused its configuration
        ├── BuildError            an image failed to build (temporary: the
        │                         build may depend on the network; recorded)
        ├── ReleaseFailed         the release command exited non-zero
        └── HealthCheckFailed     new replicas never became healthy
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class RailyardError(Exception):
    """Base of every error Railyard raises."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class PermanentError(RailyardError):
    """Retrying will not help: a person must change something first."""

    code = "permanent_error"


class TemporaryError(RailyardError):
    """Might succeed later; retried with backoff and jitter."""

    code = "temporary_error"
    status_code = 503


class NotFoundError(PermanentError):
    """The object does not exist, or belongs to another tenant."""

    status_code = 404
    code = "not_found"


class ConflictError(PermanentError):
    """The request clashes with what already exists."""

    status_code = 409
    code = "conflict"


class ValidationError(PermanentError):
    """A request body or argument is not acceptable."""

    status_code = 422
    code = "invalid_request"


class AuthError(PermanentError):
    """Credentials are missing, malformed, expired or revoked."""

    status_code = 401
    code = "unauthorized"


class ForbiddenError(AuthError):
    """The caller is known but may not do this."""

    status_code = 403
    code = "forbidden"


class ManifestError(PermanentError):
    """paas.yaml failed to parse or validate; ``issues`` lists every problem."""

    status_code = 422
    code = "invalid_manifest"

    def __init__(self, issues: list[ManifestIssue], *, filename: str = "paas.yaml") -> None:
        self.issues = issues
        self.filename = filename
        lines = "\n".join(f"  {issue}" for issue in issues)
        super().__init__(
            f"{filename}: {len(issues)} error(s)\n{lines}",
            details={"issues": [issue.to_dict() for issue in issues]},
        )

    @classmethod
    def single(cls, message: str, *, filename: str = "paas.yaml", path: str = "") -> ManifestError:
        return cls([ManifestIssue(path, message, filename=filename)], filename=filename)


class ManifestIssue:
    """One problem in a manifest: where it is and what is wrong."""

    def __init__(
        self,
        path: str,
        message: str,
        *,
        filename: str = "paas.yaml",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.path = path
        self.message = message
        self.filename = filename
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = self.filename
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f"{self.path}: " if self.path else ""
        return f"{where}: {field}{self.message}"

    def __repr__(self) -> str:
        return f"ManifestIssue({self!s})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.filename,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


class SourceError(PermanentError):
    """The repository answered, but the branch, commit or file is not there."""

    code = "source_error"


class SourceUnavailable(TemporaryError):
    """The git remote could not be reached in time."""

    code = "source_unavailable"


class RuntimeUnavailable(TemporaryError):
    """The container engine is unreachable or failed an operation."""

    code = "runtime_unavailable"


class RouterError(TemporaryError):
    """The proxy rejected or failed to load its configuration."""

    code = "router_error"


class BuildError(TemporaryError):
    """An image failed to build; ``log_tail`` holds the last lines of output."""

    code = "build_failed"

    def __init__(self, message: str, *, log_tail: str = "") -> None:
        super().__init__(message, details={"log_tail": log_tail} if log_tail else None)
        self.log_tail = log_tail


class ReleaseFailed(TemporaryError):
    """The release command exited non-zero; ``output`` holds its last lines."""

    code = "release_failed"

    def __init__(self, message: str, *, output: str = "") -> None:
        super().__init__(message, details={"log_tail": output} if output else None)
        self.output = output


class HealthCheckFailed(TemporaryError):
    """New replicas did not become healthy before the deadline."""

    code = "health_check_failed"

    def __init__(self, message: str, *, last_result: str = "", log_tail: str = "") -> None:
        super().__init__(message, details={"last_result": last_result, "log_tail": log_tail})
        self.last_result = last_result
        self.log_tail = log_tail
