"""The policy decision point over HTTP: decide for other platforms, show and reload policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from quanguard.api.bodies import Body
from quanguard.api.deps import ContainerDep, ContextDep, PrincipalDep, require_roles
from quanguard.auth import Principal
from quanguard.policy import Resource, SubjectRef
from quanguard.usecases import policy as uc

if TYPE_CHECKING:
    from quanguard.container import Container

router = APIRouter(tags=["policy"])


def on_startup(container: Container) -> None:
    """Follow the other worker processes' policy reloads (PostgreSQL ``LISTEN``)."""
    from quanguard.policy_sync import start_listening

    start_listening(container)


def on_shutdown(container: Container) -> None:
    from quanguard.policy_sync import stop_listening

    stop_listening(container)

_Name = Annotated[str, Field(min_length=1, max_length=200)]
_Opt = Annotated[str | None, Field(default=None, max_length=500)]


class SubjectIn(Body):
    """The principal the decision is about (the platform's own user, not the caller)."""

    model_config = ConfigDict(extra="forbid")
    role: _Name
    org: _Name
    id: Annotated[str, Field(max_length=200)] = "-"


class ResourceIn(Body):
    model_config = ConfigDict(extra="forbid")
    grade: _Opt = None
    dataset: _Opt = None
    owner_org: _Opt = None
    purpose: _Opt = None


class DecideIn(Body):
    model_config = ConfigDict(extra="forbid")
    principal: SubjectIn
    action: _Name
    resource: ResourceIn = Field(default_factory=ResourceIn)


class DecisionOut(BaseModel):
    effect: Literal["allow", "deny", "approval_required"]
    rule_id: str | None
    policy_version: str
    obligations: dict[str, object]
    reason: str
    matched: bool


_Decider = Annotated[Principal, Depends(require_roles("admin", "officer", "manager", "reporter"))]
_Officer = Annotated[Principal, Depends(require_roles("officer"))]


@router.post("/v1/policy/decide", response_model=DecisionOut)
def decide(body: DecideIn, caller: _Decider, container: ContainerDep, ctx: ContextDep
           ) -> dict[str, object]:
    """Decide whether ``principal`` may do ``action`` on ``resource`` (for gateways and
    portals that release data). 400 for an unknown role, action or grade."""
    decision = uc.decide_for(
        container,
        caller,
        SubjectRef(role=body.principal.role, org=body.principal.org, id=body.principal.id),
        body.action,
        Resource(**body.resource.model_dump()),
        ctx=ctx,
    )
    return decision.to_dict()


@router.get("/v1/policy")
def show(_caller: PrincipalDep, container: ContainerDep) -> dict[str, object]:
    """The active policy: version (sha256 of the files), files, grades, rule count."""
    return uc.info(container)


@router.post("/v1/policy/reload")
def reload(caller: _Officer, container: ContainerDep, ctx: ContextDep) -> dict[str, object]:
    """Reload the policy files (officers). If they do not validate, the previous version
    stays active and the answer (400) lists every ``file:line: message``."""
    return uc.reload(container, caller, ctx=ctx)
