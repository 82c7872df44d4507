"""Exchange use cases: authenticate (done by the caller) → decide → domain → audit → commit.

Each function opens one transaction. A refusal is committed together with its audit
event and then raised, so a denied request is on the record (事中全留痕).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from exchange import AggregateQuery, Exchange, JobNotFound, Refused
from exchange.ports import Caller
from quanguard.auth import Principal
from quanguard.errors import InvalidInput, TooLarge
from quanguard.services.exchange import AuditAdapter, caller_of

__all__ = [
    "INBOX",
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
    "set_consent",
]

T = TypeVar("T")
INBOX = "exchange-inbox"
MAX_UPLOAD = 512 * 1024 * 1024


def _tx(container: Any, principal: Principal, ctx: Any,
        fn: Callable[[Exchange, Any, AuditAdapter, Caller], T]) -> T:
    ex: Exchange = container.exchange
    refusal: Refused | JobNotFound | None = None
    with container.session() as session, session.begin():
        audit = AuditAdapter(container, session, principal,
                             source_ip=getattr(ctx, "source_ip", None),
                             request_id=getattr(ctx, "request_id", None))
        try:
            return fn(ex, session, audit, caller_of(principal))
        except (Refused, JobNotFound) as exc:  # commit the refusal's audit event, then raise
            refusal = exc
    raise refusal


def parse_bounds(items: Iterable[str]) -> dict[str, tuple[float, float]]:
    """``COL=LO:HI`` strings → {col: (lo, hi)}. Raises InvalidInput."""
    out: dict[str, tuple[float, float]] = {}
    for item in items:
        col, sep, rng = item.partition("=")
        lo, sep2, hi = rng.partition(":")
        try:
            if not (sep and sep2 and col.strip()):
                raise ValueError(item)
            out[col.strip()] = (float(lo), float(hi))
        except ValueError:
            raise InvalidInput(f"bad bounds {item!r}: use COL=LO:HI, e.g. income=0:50000") from None
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


def load_table(container: Any, *, upload: bytes | None = None, filename: str | None = None,
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


def register(container: Any, principal: Principal, ctx: Any, *, name: str, table: pa.Table,
             key_columns: Iterable[str] = (), bounds: Mapping[str, tuple[float, float]] | None = None,
             computations: Iterable[str] | None = None,
             group_columns: Iterable[str] | None = None,
             max_contributions: int | None = None) -> dict[str, Any]:
    ds = _tx(container, principal, ctx, lambda ex, s, a, c: ex.register(
        s, a, c, name=name, table=table, key_columns=list(key_columns), bounds=bounds,
        computations=list(computations) if computations else None,
        group_columns=list(group_columns) if group_columns else None,
        max_contributions=max_contributions))
    return ds.to_public()


def datasets(container: Any, principal: Principal) -> list[dict[str, Any]]:
    with container.session() as session:
        return [d.to_public() for d in container.exchange.catalog.list(session)]


def dataset(container: Any, principal: Principal, name: str) -> dict[str, Any]:
    with container.session() as session:
        return container.exchange.catalog.get(session, name).to_public()  # type: ignore[no-any-return]


def aggregate(container: Any, principal: Principal, ctx: Any, *, dataset: str,
              query: Mapping[str, Any], purpose: str | None = None) -> dict[str, Any]:
    try:
        q = AggregateQuery.from_json(dict(query))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"bad aggregate query: {exc}") from exc
    job = _tx(container, principal, ctx, lambda ex, s, a, c: ex.aggregate(
        s, a, c, dataset=dataset, query=q, purpose=purpose))
    return job.to_public()


def psi_terms(container: Any, principal: Principal, ctx: Any, *, dataset: str,
              purpose: str | None = None) -> dict[str, Any]:
    return _tx(container, principal, ctx, lambda ex, s, a, c: ex.psi_terms(
        s, a, c, dataset=dataset, purpose=purpose))


def psi(container: Any, principal: Principal, ctx: Any, *, dataset: str, request: bytes,
        purpose: str | None = None, job_id: str | None = None) -> tuple[dict[str, Any], Any]:
    job, answer = _tx(container, principal, ctx, lambda ex, s, a, c: ex.psi(
        s, a, c, dataset=dataset, request=request, purpose=purpose, job_id=job_id))
    return job.to_public(), answer


def extract(container: Any, principal: Principal, ctx: Any, *, dataset: str, fmt: str = "csv",
            purpose: str | None = None, job_id: str | None = None) -> tuple[dict[str, Any], bytes | None]:
    """Decide and decrypt (transaction 1), mask and mark outside any transaction (the
    watermark registry commits on its own), then record job, receipt and audit
    (transaction 2)."""
    from exchange.jobs import Job

    ticket = _tx(container, principal, ctx, lambda ex, s, a, c: ex.extract_prepare(
        s, a, c, dataset=dataset, fmt=fmt, purpose=purpose, job_id=job_id))
    if isinstance(ticket, Job):
        return ticket.to_public(), None
    ex: Exchange = container.exchange
    caller = caller_of(principal)
    try:
        out = ex.extract_render(ticket, caller)
    except Refused as exc:
        refused = exc
        _tx(container, principal, ctx,
            lambda ex_, s, a, c: _raise(ex_.extract_refused(a, c, ticket, refused)))
        raise  # pragma: no cover - _tx re-raises the refusal
    job = _tx(container, principal, ctx, lambda ex, s, a, c: ex.extract_finish(s, a, c, ticket, out))
    return job.to_public(), out.data


def _raise(exc: Exception) -> Any:
    raise exc


def approve(container: Any, principal: Principal, ctx: Any, job_id: str, *, approve: bool,
            reason: str) -> dict[str, Any]:
    job = _tx(container, principal, ctx, lambda ex, s, a, c: ex.decide_job(
        s, a, c, job_id, approve=approve, reason=reason))
    return job.to_public()


def job(container: Any, principal: Principal, ctx: Any, job_id: str) -> dict[str, Any]:
    return _tx(container, principal, ctx, lambda ex, s, a, c: ex.job(s, a, c, job_id)).to_public()


def jobs(container: Any, principal: Principal, *, status: str | None = None,
         dataset: str | None = None) -> list[dict[str, Any]]:
    from exchange.jobs import list_for

    with container.session() as session:
        return [j.to_public() for j in list_for(session, caller_of(principal), status=status,
                                                dataset=dataset)]


def budget(container: Any, principal: Principal, ctx: Any, *, dataset: str) -> dict[str, Any]:
    st = _tx(container, principal, ctx, lambda ex, s, a, c: ex.budget_state(s, a, c, dataset=dataset))
    return {"consumer": st.consumer, "dataset": st.dataset, "epsilon_spent": st.epsilon_spent,
            "epsilon_cap": st.epsilon_cap, "epsilon_left": st.epsilon_left,
            "delta_spent": st.delta_spent, "delta_cap": st.delta_cap}


def set_consent(container: Any, principal: Principal, ctx: Any, *, dataset: str,
                subjects: Iterable[str], purpose: str, state: str) -> dict[str, Any]:
    n = _tx(container, principal, ctx, lambda ex, s, a, c: ex.set_consent(
        s, a, c, dataset=dataset, subjects=list(subjects), purpose=purpose, state=state))
    return {"dataset": dataset, "purpose": purpose, "state": state, "subjects": n}


def receipt_key(container: Any) -> dict[str, str]:
    signer = container.exchange.signer
    pub = signer.public_key
    return {"algorithm": "Ed25519" if signer.suite.sign_alg == "ed25519" else "SM2-SM3",
            "suite": signer.suite.name, "public_key": pub.hex(),
            "key_id": signer.suite.hexdigest(pub)}
