"""The FastAPI app factory.

The routers are listed in :func:`route_modules`, in the order they are mounted (a new
``routes_<area>.py`` is added there; ``tests/quanguard/test_registration.py`` checks that
none is left out). A module may also expose ``on_startup(container)`` and
``on_shutdown(container)`` for background work (the Elasticsearch shipper, say).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import quanguard
from quanguard.api import (
    openapi as api_openapi,
)
from quanguard.api import (
    routes_alerts,
    routes_audit,
    routes_console,
    routes_core,
    routes_exchange,
    routes_mask,
    routes_policy,
    routes_scan,
    routes_schemas,
    routes_watermark,
)
from quanguard.api.middleware import RequestMiddleware, json_bytes
from quanguard.api.recording import RequestRecorder
from quanguard.container import Container

__all__ = ["ROUTE_MODULES", "create_app", "route_modules"]


#: The ``routes_*`` modules, in the order their routers are mounted.
ROUTE_MODULES: tuple[ModuleType, ...] = (
    routes_alerts, routes_audit, routes_console, routes_core, routes_exchange,
    routes_mask, routes_policy, routes_scan, routes_schemas, routes_watermark,
)


def route_modules() -> list[ModuleType]:
    """The ``routes_*`` modules, in the order their routers are mounted."""
    return list(ROUTE_MODULES)


def _rid(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "-"))


class _ErrorJSON(JSONResponse):
    """An error answer that always encodes (``middleware.json_bytes``)."""

    def render(self, content: object) -> bytes:
        return json_bytes(content)


def _error(request: Request, status: int, kind: str, message: str, **details: object) -> JSONResponse:
    body = {"error": {"kind": kind, "message": message, "request_id": _rid(request), **details}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return _ErrorJSON(body, status_code=status, headers=headers)


def create_app(container: Container) -> FastAPI:
    modules = route_modules()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for module in modules:
            hook = getattr(module, "on_startup", None)
            if hook is not None:
                hook(container)
        try:
            yield
        finally:
            for module in reversed(modules):
                hook = getattr(module, "on_shutdown", None)
                if hook is not None:
                    hook(container)

    app = FastAPI(
        title="quanguard",
        version=quanguard.__version__,
        description="Data-security supervision and privacy computation for the city's public-data platform.",
        lifespan=lifespan,
    )
    app.state.container = container
    for module in modules:
        app.include_router(module.router)
    api_openapi.install(app)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return _error(request, 422, "invalid", "request does not have the expected shape", problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "invalid", 413: "too_large"}.get(
            exc.status_code, "invalid"
        )
        return _error(request, exc.status_code, kind, str(exc.detail))

    app.add_middleware(
        RequestMiddleware,
        metrics=container.metrics,
        max_body_bytes=container.settings.max_body_bytes,
        body_timeout=container.settings.body_read_timeout,
        recorder=RequestRecorder.of(container),
    )
    return app
