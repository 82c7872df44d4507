"""The privacy exchange over HTTP (``/v1/exchange/...``).

No route returns rows of a registered dataset: consumers get metadata, noisy aggregates,
PSI protocol messages, and — where policy allows 可用可取 — a masked, watermarked extract.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from quanguard.api import openapi as oa
from quanguard.api.bodies import Body
from quanguard.api.deps import ContainerDep, ContextDep, PrincipalDep, require_roles
from quanguard.auth import Principal
from quanguard.errors import InvalidInput
from quanguard.usecases import exchange as uc

# what the trail keeps of a caller's text (the use cases refuse a longer one for the CLI too)
_Text = Annotated[str, StringConstraints(max_length=uc.MAX_TEXT)]

router = APIRouter(prefix="/v1/exchange", tags=["exchange"])

_Provider = Annotated[Principal, Depends(require_roles("provider"))]
_Computer = Annotated[Principal, Depends(require_roles("consumer", "manager", "officer"))]
# who may decide a job: the role its rule's ``approval`` names (a manager where it names
# none), if the policy also lets that role ``approve`` (exchange.service.approvers)
_Approver = Annotated[Principal, Depends(require_roles("manager", "officer"))]


class AggregateBody(Body):
    dataset: str
    agg: str
    column: str | None = None
    by: list[str] = Field(default_factory=list)
    where: dict[str, str] = Field(default_factory=dict)
    epsilon: float = 0.5
    q: float = 0.5
    bins: int = 10
    purpose: _Text | None = None


class PsiBody(Body):
    dataset: str
    request: str | None = None  # base64 of the openmined-psi Request (optional with ``job``)
    purpose: _Text | None = None
    job: str | None = None


class ExtractBody(Body):
    dataset: str
    format: str = "csv"
    purpose: _Text | None = None
    job: str | None = None


class ReasonBody(Body):
    reason: _Text


class ConsentBody(Body):
    subjects: list[str]
    purpose: _Text
    state: str


@router.post("/datasets", status_code=201, openapi_extra=oa.request_body(oa.form({
    "name": {"type": "string"}, "file": {"type": "string", "format": "binary"}, "path": {"type": "string"},
    "sql_url": {"type": "string"}, "sql_table": {"type": "string"},
    "key_column": {"type": "array", "items": {"type": "string"}},
    "bounds": {"type": "array", "items": {"type": "string"}}, "computation": {"type": "string"},
    "group_column": {"type": "string"}, "max_rows_per_subject": {"type": "integer"},
    "grade": {"type": "string"}}, ["name"])))
async def register(request: Request, caller: _Provider, container: ContainerDep,
                   ctx: ContextDep) -> Any:
    """Register a dataset (multipart): ``name``, one of ``file`` / ``path`` (inside the
    service's exchange-inbox) / ``sql_url`` (+ ``sql_table``), repeated ``key_column``,
    ``bounds`` (COL=LO:HI, finite, within ±1e12), ``computation``, ``group_column``,
    ``max_rows_per_subject`` (rows one key value may contribute; extra rows are dropped),
    ``grade`` (the provider's declared grade: the dataset is never graded below it).
    Returns its metadata, including its budget family."""
    async with request.form() as form:
        name = form.get("name")
        if not isinstance(name, str) or not name:
            raise uc.reject_input(container, caller, ctx, "exchange.register",
                                  InvalidInput("form field 'name' is required"))
        upload = form.get("file")
        data = filename = None
        if upload is not None and not isinstance(upload, str):
            data, filename = await upload.read(), upload.filename
        fields = {k: [v for v in form.getlist(k) if isinstance(v, str) and v]
                  for k in ("key_column", "bounds", "computation", "group_column", "grade",
                            "path", "sql_url", "sql_table", "max_rows_per_subject")}

    def one(key: str) -> str | None:
        return fields[key][0] if fields[key] else None

    strs = fields.__getitem__

    def read(bounds: Any) -> Any:
        return uc.load_table(container, upload=data, filename=filename, path=one("path"),
                             sql_url=one("sql_url"), sql_table=one("sql_table"), numeric=bounds)

    def work() -> Any:  # reading, scanning and encrypting: off the event loop
        return uc.register_input(container, caller, ctx, name=name, bounds=strs("bounds"),
                                 max_rows=one("max_rows_per_subject"), grade=one("grade"),
                                 read=read, key_columns=strs("key_column"),
                                 computations=strs("computation") or None,
                                 group_columns=strs("group_column") or None)

    return await run_in_threadpool(work)


@router.get("/datasets")
def list_datasets(caller: PrincipalDep, container: ContainerDep) -> list[dict[str, object]]:
    """Catalog metadata and grades (never rows)."""
    return uc.datasets(container, caller)


@router.get("/datasets/{name}")
def get_dataset(name: str, caller: PrincipalDep, container: ContainerDep) -> dict[str, object]:
    return uc.dataset(container, caller, name)


@router.get("/datasets/{name}/budget")
def get_budget(name: str, caller: _Computer, container: ContainerDep, ctx: ContextDep) -> dict[str, object]:
    """The caller organisation's ε/δ budget on the dataset."""
    return uc.budget(container, caller, ctx, dataset=name)


@router.post("/datasets/{name}/consent")
def consent(name: str, body: ConsentBody, caller: _Provider, container: ContainerDep,
            ctx: ContextDep) -> dict[str, object]:
    """Record granted/withdrawn purposes of subjects (stored as keyed hashes)."""
    return uc.set_consent(container, caller, ctx, dataset=name, subjects=body.subjects,
                          purpose=body.purpose, state=body.state)


@router.post("/aggregate", openapi_extra=oa.job_responses("the finished aggregate"))
def aggregate(body: AggregateBody, caller: _Computer, container: ContainerDep,
              ctx: ContextDep) -> JSONResponse:
    """A differentially private aggregate; 202 when it waits for approval."""
    query = body.model_dump(exclude={"dataset", "purpose"})
    job = uc.aggregate(container, caller, ctx, dataset=body.dataset, query=query,
                       purpose=body.purpose)
    return JSONResponse(job, status_code=202 if job["status"] == "pending_approval" else 200)


@router.get("/datasets/{name}/psi")
def psi_terms(name: str, caller: _Computer, container: ContainerDep, ctx: ContextDep) -> dict[str, object]:
    """What a PSI may reveal (``count`` or ``matches``) and how many ids it may hold."""
    return uc.psi_terms(container, caller, ctx, dataset=name)


@router.post("/psi", openapi_extra=oa.job_responses(
    "the job with reveal, setup and response (base64)"))
def psi(body: PsiBody, caller: _Computer, container: ContainerDep, ctx: ContextDep) -> JSONResponse:
    """Answer a blinded PSI request: server setup + re-blinded request (base64). With
    ``job`` the approved request runs: omit ``request`` or send exactly the approved one."""
    req = None
    if body.request is not None:
        try:
            req = base64.b64decode(body.request, validate=True)
        except (binascii.Error, ValueError):
            raise uc.reject_input(container, caller, ctx, "exchange.psi",
                                  InvalidInput("request must be base64"),
                                  dataset=body.dataset) from None
    job, answer = uc.psi(container, caller, ctx, dataset=body.dataset, request=req,
                         purpose=body.purpose, job_id=body.job)
    if answer is None:
        return JSONResponse(job, status_code=202)
    job.update(reveal=answer.reveal, setup=base64.b64encode(answer.setup).decode(),
               response=base64.b64encode(answer.response).decode())
    return JSONResponse(job)


@router.post("/extract", response_model=None, response_class=Response, openapi_extra=oa.job_responses(
    "the masked, watermarked copy", ok_content=oa.binary("text/csv", "application/vnd.apache.parquet")))
def extract(body: ExtractBody, caller: _Computer, container: ContainerDep,
            ctx: ContextDep) -> Response:
    """The masked, watermarked copy (body) with ``X-Quanguard-Job``; 202 JSON when pending."""
    job, data = uc.extract(container, caller, ctx, dataset=body.dataset, fmt=body.format,
                           purpose=body.purpose, job_id=body.job)
    if data is None:
        return JSONResponse(job, status_code=202)
    media = "text/csv" if body.format == "csv" else "application/vnd.apache.parquet"
    return Response(content=data, media_type=media, headers={"X-Quanguard-Job": str(job["job"])})


@router.get("/jobs")
def list_jobs(caller: PrincipalDep, container: ContainerDep, status: str | None = None,
              dataset: str | None = None) -> list[dict[str, object]]:
    """Jobs the caller may see: its own; a provider's datasets'; all for overseers. Each
    shows its ``request`` — size, digest, purpose, ε, expiry — as the approver approves it."""
    return uc.jobs(container, caller, status=status, dataset=dataset)


_JOB_OK = {"responses": {"200": {"description": "the job", "content": oa.json_schema(oa.JOB_REF)}}}


@router.get("/jobs/{job_id}", response_model=None, openapi_extra=_JOB_OK)
def get_job(job_id: str, caller: PrincipalDep, container: ContainerDep, ctx: ContextDep) -> dict[str, object]:
    return uc.job(container, caller, ctx, job_id)


@router.post("/jobs/{job_id}/approve", response_model=None, openapi_extra=_JOB_OK)
def approve(job_id: str, body: ReasonBody, caller: _Approver, container: ContainerDep,
            ctx: ContextDep) -> dict[str, object]:
    return uc.approve(container, caller, ctx, job_id, approve=True, reason=body.reason)


@router.post("/jobs/{job_id}/reject", response_model=None, openapi_extra=_JOB_OK)
def reject(job_id: str, body: ReasonBody, caller: _Approver, container: ContainerDep,
           ctx: ContextDep) -> dict[str, object]:
    return uc.approve(container, caller, ctx, job_id, approve=False, reason=body.reason)


@router.get("/receipt-key")
def receipt_key(caller: PrincipalDep, container: ContainerDep) -> dict[str, str]:
    """The public key (Ed25519, or SM2 under the gm suite) that signs receipts (pin it for
    offline verification)."""
    return uc.receipt_key(container)
