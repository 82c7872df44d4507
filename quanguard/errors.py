"""The service's error tree and the one table that turns any error into a status or exit code.

    ServiceError (kind)
    ├── InvalidInput        kind="invalid"          400 / exit 2
    ├── Unauthenticated     kind="unauthenticated"  401 / exit 3
    ├── Forbidden           kind="forbidden"        403 / exit 4
    ├── NotFound            kind="not_found"        404 / exit 5
    ├── Conflict            kind="conflict"         409 / exit 6
    ├── TooLarge            kind="too_large"        413 / exit 2
    ├── UnsupportedMedia    kind="unsupported_media" 415 / exit 2
    ├── RateLimited         kind="rate_limited"     429 / exit 8
    └── Unavailable         kind="unavailable"      503 / exit 7

Domain packages define their own trees; every class carries a ``kind`` class attribute
from the same vocabulary (plus ``integrity`` for a verifier that found damage), and
:func:`classify` maps it here. Nothing else in the code base chooses a status code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, TypeGuard, get_args

__all__ = [
    "ERROR_TABLE",
    "Conflict",
    "ErrorInfo",
    "ErrorKind",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "RateLimited",
    "ServiceError",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "UnsupportedMedia",
    "classify",
]


#: Every ``kind`` an error may carry, here and in the domain packages (which, not importing
#: the service, spell them as plain strings; ``tests/quanguard/test_error_kinds.py`` checks
#: that each one is listed here and in :data:`ERROR_TABLE`).
ErrorKind = Literal["invalid", "unauthenticated", "forbidden", "not_found", "conflict", "too_large",
                    "unsupported_media", "rate_limited", "unavailable", "integrity"]


class ServiceError(Exception):
    """Base of the service's errors. ``details`` are safe to show to the caller."""

    kind: ClassVar[ErrorKind] = "invalid"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(ServiceError):
    kind = "invalid"


class Unauthenticated(ServiceError):
    kind = "unauthenticated"


class Forbidden(ServiceError):
    kind = "forbidden"


class NotFound(ServiceError):
    kind = "not_found"


class Conflict(ServiceError):
    kind = "conflict"


class TooLarge(ServiceError):
    kind = "too_large"


class UnsupportedMedia(ServiceError):
    """A body in a content type the route does not take; ``accepted`` lists those it does."""

    kind = "unsupported_media"


class RateLimited(ServiceError):
    kind = "rate_limited"


class Unavailable(ServiceError):
    kind = "unavailable"


# kind -> (HTTP status, CLI exit code)
ERROR_TABLE: dict[ErrorKind, tuple[int, int]] = {
    "invalid": (400, 2),
    "unauthenticated": (401, 3),
    "forbidden": (403, 4),
    "not_found": (404, 5),
    "conflict": (409, 6),
    "too_large": (413, 2),
    "unsupported_media": (415, 2),
    "rate_limited": (429, 8),
    "unavailable": (503, 7),
    "integrity": (409, 1),
}


def is_kind(value: object) -> TypeGuard[ErrorKind]:
    """Whether ``value`` is one of the error kinds."""
    return isinstance(value, str) and value in get_args(ErrorKind)


@dataclass(frozen=True)
class ErrorInfo:
    kind: ErrorKind
    status: int
    exit_code: int
    message: str
    details: dict[str, object]


def _third_party(exc: BaseException) -> ErrorInfo | None:
    """Failures of the platform under us that are not bugs of ours."""
    if isinstance(exc, RecursionError):
        status, code = ERROR_TABLE["invalid"]
        return ErrorInfo("invalid", status, code, "input is nested too deeply", {})
    try:
        from sqlalchemy.exc import DBAPIError, OperationalError
        from sqlalchemy.exc import TimeoutError as PoolTimeout
    except ImportError:  # pragma: no cover - sqlalchemy is a dependency
        return None
    if isinstance(exc, OperationalError | PoolTimeout) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        # A dropped connection, a restarting server, a locked SQLite file: the request
        # failed cleanly and may be retried; the details stay in the server's log.
        status, code = ERROR_TABLE["unavailable"]
        return ErrorInfo("unavailable", status, code, "database unavailable; retry shortly", {})
    return None


def classify(exc: BaseException) -> ErrorInfo | None:
    """Describe ``exc`` if it is one of ours, a domain error or a known platform failure;
    ``None`` for a bug."""
    kind = getattr(type(exc), "kind", None)
    if not is_kind(kind):
        return _third_party(exc)
    status, exit_code = ERROR_TABLE[kind]
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    details = dict(getattr(exc, "details", {}) or {})
    return ErrorInfo(kind, status, exit_code, str(message), details)
