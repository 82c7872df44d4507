"""Exchange use cases: authenticate (done by the caller) → gate → domain → audit → commit.

Each function opens one transaction, with the exchange deciding through the one gate
(:class:`~quanguard.services.exchange.GateDecider`). A policy refusal is recorded by the
gate in its own transaction; a refusal of the exchange's own guards (budget, PSI limits,
approvals) is committed together with its audit event; any other rejected request (bad
input, unknown dataset or job, a job in the wrong state) is recorded with
:func:`quanguard.gate.record_denial`. Then the error is raised: no refusal goes
unrecorded (事中全留痕).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from exchange import AggregateQuery, Exchange, ExchangeError, Refused
from exchange.numbers import check_bounds
from exchange.ports import Caller
from monitor.ingest import MAX_TEXT
from quanguard.auth import Principal
from quanguard.errors import Forbidden, InvalidInput, TooLarge
from quanguard.gate import record_denial
from quanguard.services.exchange import AuditAdapter, GateDecider, GateRefusal, caller_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from exchange import PsiAnswer
    from quanguard.container import Container
    from quanguard.gate import RequestContext

__all__ = [
    "INBOX",
    "MAX_TEXT",
    "MAX_UPLOAD",
    "aggregate",
    "approve",
    "budget",
    "dataset",
    "datasets",
    "extract",
    "job",
    "jobs",
    "load_table",
    "parse_bounds",
    "psi",
    "psi_terms",
    "receipt_key",
    "register",
    "register_input",
    "reject_input",
    "set_consent",
]

T = TypeVar("T")
INBOX = "exchange-inbox"
MAX_UPLOAD = 512 * 1024 * 1024


# error kinds of a rejected request (4xx): recorded when nothing else recorded them
_REJECTED = frozenset({"invalid", "not_found", "conflict", "too_large", "forbidden"})


def _record(container: Container, principal: Principal, ctx: RequestContext | None, action: str, exc: Exception,
            dataset: str | None = None) -> None:
    record_denial(container, principal, action, ctx, dataset=dataset,
                  reason=getattr(exc, "message", None) or str(exc), error=exc)


@dataclass(frozen=True)
class ExchangeWork:
    """One unit of work of the exchange: the gate-bound exchange, the transaction's session,
    the audit sink bound to it and the caller (the arguments every exchange step takes)."""

    ex: Exchange
    session: Session
    audit: AuditAdapter
    caller: Caller


@contextmanager
def exchange_work(container: Container, principal: Principal, ctx: RequestContext | None,
                  action: str, *, dataset: str | None = None,
                  texts: Mapping[str, str | None] | None = None) -> Iterator[ExchangeWork]:
    """The exchange's unit of work: one transaction with the gate-bound exchange.

    A refusal the exchange recorded (its audit event is in this transaction) is committed
    and raised; any other 4xx error is rolled back, recorded on its own, and raised. A
    policy refusal was already recorded by the gate. ``texts`` (the caller's purpose or
    reason, by name) longer than the trail keeps of a text (``MAX_TEXT`` characters) are
    refused first, and recorded, before any work.
    """
    if texts:
        _recorded(container, principal, ctx, action, lambda: check_texts(texts), dataset=dataset)
    ex: Exchange = container.exchange.with_decider(GateDecider(container, principal, ctx))
    recorded: ExchangeError | None = None
    try:
        with container.unit_of_work() as session:
            audit = AuditAdapter(container, session, principal,
                                 source_ip=getattr(ctx, "source_ip", None),
                                 request_id=getattr(ctx, "request_id", None))
            try:
                yield ExchangeWork(ex, session, audit, caller_of(principal))
            except ExchangeError as exc:
                if not audit.failures:
                    raise
                recorded = exc  # leave the block normally: the refusal's record commits
    except GateRefusal as refusal:  # the transaction is closed: record, raise Forbidden
        refusal.record_and_raise(container, principal, ctx)
        raise  # pragma: no cover - record_and_raise raises
    except Exception as exc:
        # the gate's Forbidden is recorded already; every other rejected request is not
        if getattr(type(exc), "kind", None) in _REJECTED and not isinstance(exc, Forbidden):
            _record(container, principal, ctx, action, exc, dataset=dataset)
        raise
    if recorded is not None:
        raise recorded


def reject_input(container: Container, principal: Principal, ctx: RequestContext | None, action: str,
                 exc: Exception, *, dataset: str | None = None) -> Exception:
    """Record a request the HTTP layer rejected before the use case (bad form or body);
    returns ``exc`` to raise."""
    _record(container, principal, ctx, action, exc, dataset=dataset)
    return exc


def check_texts(texts: Mapping[str, str | None]) -> None:
    """InvalidInput naming the first of ``texts`` (a purpose, a reason) longer than
    ``MAX_TEXT`` characters: each goes into the job, the receipt or the trail, whose texts
    hold at most that many."""
    for name, text in texts.items():
        if text is not None and len(text) > MAX_TEXT:
            raise InvalidInput(f"{name} is {len(text):,} characters long; at most {MAX_TEXT} "
                               "are kept: state it in fewer words", field=name)


def _recorded(container: Container, principal: Principal, ctx: RequestContext | None, action: str,
              fn: Callable[[], T], *, dataset: str | None = None) -> T:
    """Run ``fn`` (input handling outside the exchange); record a rejected input."""
    try:
        return fn()
    except Exception as exc:
        if getattr(type(exc), "kind", None) in _REJECTED and not isinstance(exc, Forbidden):
            _record(container, principal, ctx, action, exc, dataset=dataset)
        raise


def parse_bounds(items: Iterable[str]) -> dict[str, tuple[float, float]]:
    """``COL=LO:HI`` strings → {col: (lo, hi)}. Raises InvalidInput."""
    out: dict[str, tuple[float, float]] = {}
    for item in items:
        col, sep, rng = item.partition("=")
        lo, sep2, hi = rng.partition(":")
        try:
            if not (sep and sep2 and col.strip()):
                raise ValueError(item)
            low, high = float(lo), float(hi)
        except ValueError:
            raise InvalidInput(f"bad bounds {item!r}: use COL=LO:HI, e.g. income=0:50000") from None
        try:
            out[col.strip()] = check_bounds(col.strip(), low, high)
        except ExchangeError as exc:
            raise InvalidInput(f"bad bounds {item!r}: {exc.message}") from None
    return out


def _typed(table: pa.Table, numeric: Iterable[str]) -> pa.Table:
    """Text readers give strings; make the ``numeric`` columns (those with declared bounds)
    numbers. Others stay text, so identifiers keep their leading zeros.

    Raises InvalidInput when a bounded column holds something that is not a number.
    """
    wanted = set(numeric)
    cols = []
    for name in table.column_names:
        col = table.column(name)
        if name in wanted and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            nonempty = pc.if_else(pc.equal(pc.utf8_trim_whitespace(col), ""), None, col)
            for target in (pa.int64(), pa.float64()):
                try:
                    col = pc.cast(nonempty, target)
                    break
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    continue
            else:
                raise InvalidInput(f"column {name!r} has bounds but holds non-numeric values")
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def load_table(container: Container, *, upload: bytes | None = None, filename: str | None = None,
               path: str | None = None, sql_url: str | None = None,
               sql_table: str | None = None, numeric: Iterable[str] = ()) -> pa.Table:
    """Read a dataset from an upload, a file in the service's inbox, or a SQL table.

    Server paths are confined to ``<data_dir>/exchange-inbox`` so a provider cannot make
    the service read arbitrary files. Raises InvalidInput / TooLarge.
    """
    from desensitize.tableio import read_table

    sources = [s for s in (upload is not None, bool(path), bool(sql_url)) if s]
    if len(sources) != 1:
        raise InvalidInput("give exactly one of: an uploaded file, a server path, a SQL URL")
    try:
        if sql_url:
            return _typed(read_table(sql_url, table=sql_table), numeric)
        if path:
            inbox = (container.settings.data_dir / INBOX).resolve()
            target = (inbox / path).resolve()
            if inbox not in target.parents or not target.is_file():
                raise InvalidInput(f"server path must name a file inside {INBOX}/")
            return _typed(read_table(target), numeric)
        assert upload is not None
        if len(upload) > MAX_UPLOAD:
            raise TooLarge(f"upload exceeds {MAX_UPLOAD} bytes")
        suffix = Path(filename or "data.csv").suffix.lower() or ".csv"
        fd, tmp = tempfile.mkstemp(suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(upload)
            table = read_table(tmp)
            return _typed(table, numeric)
        finally:
            os.unlink(tmp)
    except (InvalidInput, TooLarge):
        raise
    except Exception as exc:
        kind = getattr(type(exc), "kind", None)
        if kind:  # a desensitize TableError etc. keeps its kind
            raise
        raise InvalidInput(f"cannot read the dataset: {exc}") from exc


def register(container: Container, principal: Principal, ctx: RequestContext | None, *, name: str, table: pa.Table,
             key_columns: Iterable[str] = (), bounds: Mapping[str, tuple[float, float]] | None = None,
             computations: Iterable[str] | None = None,
             group_columns: Iterable[str] | None = None,
             max_contributions: int | None = None,
             declared_grade: str | None = None) -> dict[str, object]:
    order = tuple(container.policy.grade_order)
    with exchange_work(container, principal, ctx, "exchange.register", dataset=name) as w:
        ds = w.ex.register(
            w.session, w.audit, w.caller, name=name, table=table, key_columns=list(key_columns),
            bounds=bounds, computations=list(computations) if computations else None,
            group_columns=list(group_columns) if group_columns else None,
            max_contributions=max_contributions, declared_grade=declared_grade,
            grade_order=order)
    return ds.to_public()


def register_input(container: Container, principal: Principal, ctx: RequestContext | None, *, name: str,
                   bounds: Iterable[str], max_rows: str | None, grade: str | None,
                   read: Callable[[Mapping[str, tuple[float, float]]], pa.Table],
                   key_columns: Iterable[str] = (), computations: Iterable[str] | None = None,
                   group_columns: Iterable[str] | None = None) -> dict[str, object]:
    """Parse the registration form's numbers and grade, read the table, register it. A
    rejected input is recorded as a refused ``exchange.register``."""

    def parse() -> tuple[dict[str, tuple[float, float]], int | None, pa.Table]:
        parsed = parse_bounds(bounds)
        if max_rows is not None and not max_rows.isdigit():
            raise InvalidInput("max_rows_per_subject must be a positive integer")
        if grade is not None and grade not in tuple(container.policy.grade_order):
            raise InvalidInput(f"declared grade {grade!r} is not a grade "
                               f"(known: {' '.join(container.policy.grade_order)})")
        return parsed, int(max_rows) if max_rows else None, read(parsed)

    parsed, cap, table = _recorded(container, principal, ctx, "exchange.register", parse, dataset=name)
    return register(container, principal, ctx, name=name, table=table, bounds=parsed,
                    max_contributions=cap, declared_grade=grade, key_columns=key_columns,
                    computations=computations, group_columns=group_columns)


def datasets(container: Container, principal: Principal) -> list[dict[str, object]]:
    with container.session() as session:
        return [d.to_public() for d in container.exchange.catalog.list(session)]


def dataset(container: Container, principal: Principal, name: str) -> dict[str, object]:
    with container.session() as session:
        return container.exchange.catalog.get(session, name).to_public()


def aggregate(container: Container, principal: Principal, ctx: RequestContext | None, *, dataset: str,
              query: Mapping[str, object], purpose: str | None = None) -> dict[str, object]:
    def parse() -> AggregateQuery:
        try:
            return AggregateQuery.from_json(dict(query))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(f"bad aggregate query: {exc}") from exc

    q = _recorded(container, principal, ctx, "exchange.aggregate", parse, dataset=dataset)
    with exchange_work(container, principal, ctx, "exchange.aggregate", dataset=dataset,
                       texts={"purpose": purpose}) as w:
        job = w.ex.aggregate(w.session, w.audit, w.caller, dataset=dataset, query=q, purpose=purpose)
    return job.to_public()


def psi_terms(container: Container, principal: Principal, ctx: RequestContext | None, *, dataset: str,
              purpose: str | None = None) -> dict[str, object]:
    with exchange_work(container, principal, ctx, "exchange.psi_terms", dataset=dataset,
                       texts={"purpose": purpose}) as w:
        return w.ex.delivery.psi_terms(w.session, w.audit, w.caller, dataset=dataset, purpose=purpose)


def psi(container: Container, principal: Principal, ctx: RequestContext | None, *, dataset: str, request: bytes | None,
        purpose: str | None = None, job_id: str | None = None) -> tuple[dict[str, object], PsiAnswer | None]:
    """A PSI answer; with ``job_id`` the approved request runs (``request`` may be None)."""
    with exchange_work(container, principal, ctx, "exchange.psi", dataset=dataset,
                       texts={"purpose": purpose}) as w:
        job, answer = w.ex.delivery.psi(w.session, w.audit, w.caller, dataset=dataset, request=request,
                               purpose=purpose, job_id=job_id)
    return job.to_public(), answer


def extract(container: Container, principal: Principal, ctx: RequestContext | None, *, dataset: str, fmt: str = "csv",
            purpose: str | None = None, job_id: str | None = None) -> tuple[dict[str, object], bytes | None]:
    """Decide and decrypt (transaction 1), mask and mark outside any transaction (the
    watermark registry commits on its own), then record job, receipt and audit
    (transaction 2)."""
    from exchange.jobs import Job

    with exchange_work(container, principal, ctx, "exchange.extract", dataset=dataset,
                       texts={"purpose": purpose}) as w:
        ticket = w.ex.delivery.extract_prepare(w.session, w.audit, w.caller, dataset=dataset, fmt=fmt,
                                      purpose=purpose, job_id=job_id)
    if isinstance(ticket, Job):
        return ticket.to_public(), None
    ex: Exchange = container.exchange
    caller = caller_of(principal)
    try:
        out = ex.delivery.extract_render(ticket, caller)
    except Refused as exc:
        with exchange_work(container, principal, ctx, "exchange.extract", dataset=dataset) as w:
            raise w.ex.delivery.extract_refused(w.audit, w.caller, ticket, exc) from None
        raise  # pragma: no cover - the unit of work re-raises the recorded refusal
    except Exception as exc:  # masking or marking broke after the request was allowed
        _record(container, principal, ctx, "exchange.extract", exc, dataset=dataset)
        raise
    with exchange_work(container, principal, ctx, "exchange.extract", dataset=dataset) as w:
        job = w.ex.delivery.extract_finish(w.session, w.audit, w.caller, ticket, out)
    return job.to_public(), out.data


def approve(container: Container, principal: Principal, ctx: RequestContext | None, job_id: str, *, approve: bool,
            reason: str) -> dict[str, object]:
    action = "exchange.approve" if approve else "exchange.reject"
    with exchange_work(container, principal, ctx, action, texts={"reason": reason}) as w:
        job = w.ex.decide_job(w.session, w.audit, w.caller, job_id, approve=approve, reason=reason)
    return job.to_public()


def job(container: Container, principal: Principal, ctx: RequestContext | None, job_id: str) -> dict[str, object]:
    with exchange_work(container, principal, ctx, "exchange.result") as w:
        return w.ex.job(w.session, w.audit, w.caller, job_id).to_public()


def jobs(container: Container, principal: Principal, *, status: str | None = None,
         dataset: str | None = None) -> list[dict[str, object]]:
    from exchange.jobs import list_for

    with container.session() as session:
        return [j.to_public() for j in list_for(session, caller_of(principal), status=status,
                                                dataset=dataset)]


def budget(container: Container, principal: Principal, ctx: RequestContext | None, *, dataset: str) -> dict[str, object]:
    with exchange_work(container, principal, ctx, "exchange.budget", dataset=dataset) as w:
        st = w.ex.budget_state(w.session, w.audit, w.caller, dataset=dataset)
    return {"consumer": st.consumer, "dataset": st.dataset, "epsilon_spent": st.epsilon_spent,
            "epsilon_cap": st.epsilon_cap, "epsilon_left": st.epsilon_left,
            "delta_spent": st.delta_spent, "delta_cap": st.delta_cap,
            "budget_family": st.family}


def set_consent(container: Container, principal: Principal, ctx: RequestContext | None, *, dataset: str,
                subjects: Iterable[str], purpose: str, state: str) -> dict[str, object]:
    with exchange_work(container, principal, ctx, "exchange.consent", dataset=dataset,
                       texts={"purpose": purpose}) as w:
        n = w.ex.set_consent(w.session, w.audit, w.caller, dataset=dataset, subjects=list(subjects),
                             purpose=purpose, state=state)
    return {"dataset": dataset, "purpose": purpose, "state": state, "subjects": n}


def receipt_key(container: Container) -> dict[str, str]:
    signer = container.exchange.signer
    pub = signer.public_key
    return {"algorithm": "Ed25519" if signer.suite.sign_alg == "ed25519" else "SM2-SM3",
            "suite": signer.suite.name, "public_key": pub.hex(),
            "key_id": signer.suite.hexdigest(pub)}
