"""HTTP client of the service for commands that run on the user's own machine.

``QUANGUARD_URL`` (default ``http://127.0.0.1:8000``) and ``QUANGUARD_API_KEY``. Error
bodies ``{"error": {"kind", "message"}}`` become the service's own error classes, so the
root command prints ``error: message`` and exits with the code of that kind.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from quanguard.errors import (
    ERROR_TABLE,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    ServiceError,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UnsupportedMedia,
)

__all__ = ["DEFAULT_URL", "RemoteIntegrity", "ServiceClient", "connect"]

DEFAULT_URL = "http://127.0.0.1:8000"


class RemoteIntegrity(ServiceError):
    kind = "integrity"


_BY_KIND: dict[str, type[ServiceError]] = {
    "invalid": InvalidInput, "unauthenticated": Unauthenticated, "forbidden": Forbidden,
    "not_found": NotFound, "conflict": Conflict, "too_large": TooLarge,
    "rate_limited": RateLimited, "unavailable": Unavailable, "integrity": RemoteIntegrity,
    "unsupported_media": UnsupportedMedia,
}
# The kind of a reply without our error body, by its status (ERROR_TABLE read backwards; a
# bare 409 is a conflict, integrity names itself in the body; 422 is FastAPI's own invalid).
_BY_STATUS: dict[int, str] = {
    **{status: kind for kind, (status, _exit) in ERROR_TABLE.items() if kind != "integrity"},
    422: "invalid",
}


class ServiceClient:
    """A thin wrapper over an ``httpx.Client`` that raises our errors for error replies."""

    def __init__(self, http: httpx.Client, *, base: str = "") -> None:
        self.http = http
        self.base = base.rstrip("/")

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, self.base + path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"cannot reach the service at {self.base or 'its URL'}: {exc}") from exc
        if resp.status_code >= 400:
            raise _error(resp)
        return resp

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs).json()


def _error(resp: httpx.Response) -> ServiceError:
    kind, message = _BY_STATUS.get(resp.status_code, "unavailable"), f"HTTP {resp.status_code}"
    try:
        err = resp.json().get("error", {})
        kind = str(err.get("kind") or kind)
        message = str(err.get("message") or message)
    except (ValueError, AttributeError):
        pass
    return _BY_KIND.get(kind, Unavailable)(message)


def connect() -> ServiceClient:
    """A client for ``QUANGUARD_URL`` authenticated with ``QUANGUARD_API_KEY``."""
    url = os.environ.get("QUANGUARD_URL") or DEFAULT_URL
    key = os.environ.get("QUANGUARD_API_KEY")
    if not key:
        raise Unauthenticated("set QUANGUARD_API_KEY to the key the service issued to you")
    headers = {"Authorization": f"Bearer {key}"}
    return ServiceClient(httpx.Client(headers=headers, timeout=600.0), base=url)
