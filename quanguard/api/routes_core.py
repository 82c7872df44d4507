"""Liveness, identity and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import quanguard
from quanguard.api.deps import ContainerDep, PrincipalDep
from quanguard.db import ping
from quanguard.errors import Unavailable

router = APIRouter()


@router.get("/healthz", tags=["service"])
def healthz(container: ContainerDep) -> dict[str, object]:
    """Liveness and database reachability (no authentication)."""
    try:
        ping(container.engine)
    except Exception as exc:
        raise Unavailable("database unreachable") from exc
    return {"status": "ok", "version": quanguard.__version__, "db": container.engine.dialect.name}


@router.get("/v1/whoami", tags=["service"])
def whoami(principal: PrincipalDep) -> dict[str, str]:
    """The caller as the service sees it."""
    return {"id": principal.id, "name": principal.name, "role": principal.role, "org": principal.org}


@router.get("/metrics", tags=["service"], response_class=Response)
def metrics(container: ContainerDep) -> Response:
    """Prometheus exposition of this instance's metrics."""
    return Response(generate_latest(container.metrics.registry), media_type=CONTENT_TYPE_LATEST)
