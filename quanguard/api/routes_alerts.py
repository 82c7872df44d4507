"""Alerts over HTTP: ``GET /v1/alerts`` and ``PATCH /v1/alerts/{id}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field

from quanguard.api.bodies import Body
from quanguard.api.deps import ContainerDep, ContextDep, require_roles
from quanguard.auth import Principal
from quanguard.usecases import audit as uc

router = APIRouter(tags=["alerts"])

_Team = Annotated[Principal, Depends(require_roles("auditor", "manager", "officer", "admin"))]


class AlertChange(Body):
    status: str = Field(description="open | acknowledged | closed")
    note: str | None = Field(default=None, max_length=2000)


@router.get("/v1/alerts")
def get_alerts(caller: _Team, container: ContainerDep, ctx: ContextDep,
               status: str | None = None, rule: str | None = None, actor: str | None = None,
               limit: int = 100, offset: int = 0) -> Any:
    """Alerts, newest first; filter by ``status`` (open, acknowledged, closed), rule, actor.
    Each names its actor (``user.name`` of the key, when known) and says how many events
    it links (``events``) beside how many rule hits collapsed into it (``count``)."""
    from quanguard.usecases.audit_read import names_of

    alerts = uc.list_alerts(container, caller, status=status, rule=rule, actor=actor,
                            limit=max(1, min(limit, 1000)), offset=max(0, offset),
                            ctx=ctx)
    names = names_of(container, [a.actor for a in alerts])
    return {"alerts": [{**a.to_dict(), "events": len(a.seqs),
                        "user": {"id": a.actor, "name": names.get(a.actor)}}
                       for a in alerts]}


@router.patch("/v1/alerts/{alert_id}")
def patch_alert(alert_id: str, change: AlertChange, caller: _Team, container: ContainerDep,
                ctx: ContextDep) -> Any:
    """Acknowledge, close (with a note) or reopen an alert. A closed alert stays closed."""
    alert = uc.update_alert(container, caller, alert_id, status=change.status, note=change.note,
                            ctx=ctx)
    return alert.to_dict()
