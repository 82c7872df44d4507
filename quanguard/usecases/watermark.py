"""Watermark use cases: decide by policy -> embed or detect -> registry -> audit -> commit.

Every embedding and every detection is an audit event (``watermark_embed`` /
``watermark_detect``) holding column names, counts, the verdict and digests only. The
decision is the one gate's (:func:`quanguard.gate.authorize`), which records a denied
request; the CLI's local operator is the ``operator`` role of ``policies/roles.yaml``.
An allowed attempt that then fails (bad input, an output that is its input, an unknown
dataset, a table too small) leaves one failed event of its own, its effect following the
error (:func:`quanguard.gate.record_denial`: ``error`` for a 4xx/5xx).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from desensitize.errors import DesensitizeError
from quanguard.auth import Principal
from quanguard.errors import InvalidInput, ServiceError
from quanguard.gate import authorize, record_denial
from quanguard.policy.model import Resource
from quanguard.services.scan import list_assets
from watermark import EmbedReport, Params, TableTooSmall, Verdict, WatermarkError, check_alpha

if TYPE_CHECKING:
    from quanguard.container import Container
    from quanguard.gate import AuditOrigin, RequestContext
    from quanguard.policy.model import Decision
    from watermark.registry import CopyRecord

__all__ = ["GRADE_SAMPLE", "EmbedResult", "copies", "detect", "embed", "file_grade", "inventory_grade"]

@dataclass(frozen=True)
class EmbedResult:
    """What one embedding produced: the report, the registry id and the output digest."""

    report: EmbedReport
    copy_id: str
    dataset: str
    output: str
    output_digest: str

    def to_dict(self) -> dict[str, object]:
        report = {k: v for k, v in self.report.to_dict().items()
                  if k not in ("codeword", "canary_keys")}  # registry-only material
        return {"copy_id": self.copy_id, "dataset": self.dataset, "output": self.output,
                "output_digest": self.output_digest, **report}


def _ctx_kw(ctx: RequestContext | None) -> AuditOrigin:
    return {"source_ip": getattr(ctx, "source_ip", None), "request_id": getattr(ctx, "request_id", None)}


#: rows of a file sampled to grade it before it is marked (as ``quanguard scan``)
GRADE_SAMPLE = 10_000


def file_grade(container: Container, src: str, dataset: str) -> str:
    """The grade a copy of ``src`` is marked under: its own content graded by
    ``policies/grading.yaml`` (a sample, as ``quanguard scan``), or the inventory's grade of
    ``dataset`` when that is higher (就高从严). Never none: a file nobody scanned is graded
    here, so the grade rules of ``policies/roles.yaml`` and the watermark profile of the
    grade apply to what the file holds, not to its name."""
    from desensitize.tableio import open_table

    scanned = container.scanner.grade_batches(open_table(src).sample_batches(GRADE_SAMPLE)).dataset_grade
    grades = [g for g in (scanned, inventory_grade(container, dataset)) if g is not None]
    if not grades:
        raise InvalidInput(f"{dataset!r}: the file has no column to grade, so it cannot be marked")
    return container.policy.max_grade(grades)


def inventory_grade(container: Container, dataset: str | None) -> str | None:
    """The dataset's grade from the scan inventory, when it was scanned."""
    if not dataset:
        return None
    with container.session() as session:
        found = list_assets(session, dataset=dataset, limit=1)
    return found[0].dataset_grade if found else None


def _authorize(container: Container, principal: Principal, action: str, dataset: str | None,
               ctx: RequestContext | None, grade: str | None = None) -> Decision:
    grade = grade if grade is not None else inventory_grade(container, dataset)
    resource = Resource(grade=grade, dataset=dataset, owner_org=principal.org)
    return authorize(container, principal, action, resource, ctx)


def _reason(exc: BaseException, path: str, source_name: str | None) -> str:
    """What a failure event says: the message of an error the caller is told (ours, the
    watermark library's or the table readers' and writers'), else only the type of a bug. A spooled upload (``path``) is
    named as the caller named it (``source_name``), never by the server's file."""
    if not isinstance(exc, ServiceError | WatermarkError | DesensitizeError):
        return type(exc).__name__
    text = str(exc)
    if source_name:
        text = text.replace(path, source_name).replace(Path(path).name, source_name)
    return text[:300]


def _overwrites_input(src: str, dst: str) -> bool:
    """Whether writing ``dst`` would replace ``src``: the same path, a symbolic or a hard
    link to it, or the same SQL table (``quanguard mask`` refuses the same)."""
    from quanguard.usecases.mask import same_target

    return same_target(src, dst, None)


def embed(container: Container, principal: Principal, src: str, dst: str, *, recipient: str,
          dataset: str | None = None, params: Params | None = None, ctx: RequestContext | None = None,
          source_name: str | None = None,
          progress: Callable[[int], None] | None = None) -> EmbedResult:
    """Mark ``src`` for ``recipient`` into ``dst``, register the copy, audit it.

    Raises ``TableTooSmall`` (nothing written) when the table cannot carry a mark and no
    canary rows were asked for. The file is graded first (:func:`file_grade`); the policy
    decides on that grade and the watermark policy's profile of it bounds the marks.
    """
    name = dataset or Path(source_name or src).stem
    grade = file_grade(container, src, name)
    decision = _authorize(container, principal, "watermark_embed", name, ctx, grade)
    wm = container.watermarker
    params = wm.bounded(params, grade)
    try:
        if _overwrites_input(src, dst):
            raise InvalidInput("the output would overwrite the input; choose another -o")
        if params.pseudonyms and not params.mark_pseudonyms:
            raise WatermarkError(
                f"the watermark policy for {name!r} (grade {grade or 'unknown'}) keeps pseudonyms "
                f"unchanged; do not name pseudonym columns ({', '.join(params.pseudonyms)})")
        out = wm.embed_file(src, dst, recipient, params, progress)
    except Exception as exc:  # an allowed attempt that fails still leaves its event
        reason = ("table too small" if isinstance(exc, TableTooSmall)
                  else _reason(exc, src, source_name))
        record_denial(container, principal, "watermark_embed", ctx, decision=decision,
                      dataset=name, grade=grade, reason=reason, error=exc,
                      labels={"recipient": recipient, "reason": reason})
        raise
    with container.unit_of_work() as session:
        copy_id = wm.register(session, dataset=name, report=out.report, columns=out.columns,
                              digest=out.digest, issued_by=principal.id)
        container.audit.record(
            session, actor=principal, action="watermark_embed", dataset=name, grade=grade,
            fields=out.report.plan.marked_columns, rows=out.report.rows,
            decision=decision, result_digest=out.digest, **_ctx_kw(ctx),
            labels={"recipient": recipient, "copy_id": copy_id,
                    "marked_cells": out.report.marked_cells,
                    "canary_rows": out.report.canary_rows,
                    "gamma": out.report.plan.gamma,
                    "key": out.report.key_fingerprint})
    return EmbedResult(out.report, copy_id, name, os.fspath(dst), out.digest)


def detect(container: Container, principal: Principal, path: str, *, dataset: str | None = None,
           alpha: float = 1e-6, ctx: RequestContext | None = None, source_name: str | None = None,
           progress: Callable[[int], None] | None = None) -> Verdict:
    """Test a suspect table against the registered copies (of ``dataset``, or all).
    ``source_name``: what the caller calls ``path`` (an upload's own name), for the record."""
    from quanguard.services.watermark import file_digest

    decision = _authorize(container, principal, "watermark_detect", dataset, ctx)
    wm = container.watermarker
    try:
        alpha = check_alpha(alpha)
        with container.session() as session:
            issued = wm.copies(session, dataset)
        verdict: Verdict = wm.detect_file(path, issued, alpha, progress)
    except Exception as exc:  # an allowed attempt that fails still leaves its event
        reason = _reason(exc, path, source_name)
        record_denial(container, principal, "watermark_detect", ctx, decision=decision,
                      dataset=dataset, reason=reason, error=exc, labels={"reason": reason})
        raise
    digest = file_digest(path) if "://" not in path and os.path.isfile(path) else None
    with container.unit_of_work() as session:
        container.audit.record(
            session, actor=principal, action="watermark_detect",
            dataset=dataset, rows=verdict.evidence.get("rows_seen"), decision=decision,
            fields=tuple(verdict.evidence.get("columns_used", ())),
            result_digest=digest, **_ctx_kw(ctx),
            labels={"verdict": verdict.verdict, "recipient": verdict.recipient,
                    "p_value": verdict.p_value,
                    "recipients_tested": verdict.evidence.get("recipients_tested")})
    return verdict


def copies(container: Container, principal: Principal, dataset: str | None = None) -> list[CopyRecord]:
    """The registry (metadata only), for people who may detect."""
    from watermark import registry

    _authorize(container, principal, "watermark_detect", dataset, None)
    with container.session() as session:
        return registry.list_copies(session, dataset)
