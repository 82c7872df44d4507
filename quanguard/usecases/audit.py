"""Audit use cases: ingest, search, status, checkpoint, proof, verify, purge, alerts.

Each one: the one gate (:func:`quanguard.gate.authorize`: ``report_events`` for ingest,
``audit_search`` for search, ``audit_verify`` for status, checkpoints, proofs and
verification, ``audit_purge`` for retention, ``alert_read`` and ``alert_update`` for
alerts) → domain call → audit event → commit. A
refusal is recorded by the gate; the CLI's local operator is the ``operator`` role of
``policies/roles.yaml``, with no special case here. Searches and alert changes are audit
events themselves; a failure to record fails the call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, Unpack

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from gmcrypto import get_suite
from monitor.alert_engine import Alert
from monitor.checkpoint import Checkpoint
from monitor.errors import MonitorError, StoreBusy, Tampered
from monitor.events import AuditEvent, utc_now
from monitor.ingest import MAX_BATCH, LineError, ParsedBatch, parse_batch, parse_chunks
from monitor.retention import plan_purge, purge
from monitor.search import SearchQuery, SearchResult
from monitor.store import EVENTS, VERIFY_RUNS, Generation, from_us, to_us
from monitor.trail import consistency_document, proof_document
from quanguard.auth import Principal
from quanguard.errors import Conflict
from quanguard.gate import RequestContext, authorize, origin, tracking

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from quanguard.container import Container
    from quanguard.services.audit import RecordFields

__all__ = [
    "IngestResult",
    "checkpoint",
    "consistency",
    "ingest",
    "list_alerts",
    "proof",
    "purge_old",
    "result_dict",
    "search",
    "status",
    "update_alert",
    "verify",
]

MAX_KEPT_ERRORS = 1000
T = TypeVar("T")


@dataclass(frozen=True)
class IngestResult:
    lines: int
    accepted: int
    first_seq: int | None
    last_seq: int | None
    errors: tuple[LineError, ...]
    rejected_total: int | None = None  # when ``errors`` holds only the first ones

    def to_dict(self) -> dict[str, object]:
        rejected = len(self.errors) if self.rejected_total is None else self.rejected_total
        return {"lines": self.lines, "accepted": self.accepted, "rejected": rejected,
                "first_seq": self.first_seq, "last_seq": self.last_seq,
                "errors": [e.to_dict() for e in self.errors]}


def _busy(exc: OperationalError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return "locked" in text or "busy" in text or "could not serialize" in text


def with_retry(fn: Callable[[], T], *, attempts: int = 6, delay: float = 0.1) -> T:
    """Run a transaction; retry it when the database is locked/busy (never drop)."""
    for attempt in range(attempts):
        try:
            return fn()
        except OperationalError as exc:
            if not _busy(exc) or attempt == attempts - 1:
                if _busy(exc):
                    raise StoreBusy(f"the audit store stayed locked after {attempts} tries; "
                                    "nothing was written, retry later") from exc
                raise
            time.sleep(delay * (2 ** attempt))
    raise AssertionError("unreachable")


def _record(container: Container, principal: Principal, action: str, **kw: Unpack[RecordFields]) -> int:
    def tx() -> int:
        with container.unit_of_work() as session:
            return int(container.audit.record(session, actor=principal, action=action, **kw))
    return with_retry(tx)


# -- ingest ---------------------------------------------------------------------------
# SQLite pages a streamed ingest keeps in memory (KiB): the trail's indexes take new keys
# all over (ids are random), and with the default 2 MiB cache most index pages are
# re-read from the file on every transaction.
BULK_CACHE_KIB = 16_384


def bulk_pages(session: Session) -> None:
    """Give the session's SQLite connection a page cache for bulk appends (no-op elsewhere)."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")


def _append_part(container: Container, part: Sequence[AuditEvent], *, now: datetime,
                 stream: bool, own: Callable[[Session, int, int], object] | None = None,
                 ) -> tuple[int, int]:
    """Append ``part`` in one transaction (retried while the store is busy): its first and
    last seq. ``own(session, first, last)`` adds the request's own event to it."""
    def tx() -> tuple[int, int]:
        with container.unit_of_work() as session:
            if stream:
                bulk_pages(session)
            stored = container.audit.record_batch(session, part, source="reporter", now=now)
            low, high = stored[0].seq or 0, stored[-1].seq or 0
            if own is not None:
                own(session, low, high)
            return low, high

    return with_retry(tx)


def ingest(container: Container, principal: Principal, lines: Iterable[str | bytes], *,
           ctx: RequestContext | None = None,
           max_lines: int | None = MAX_BATCH, chunk: int = 10_000,
           progress: Callable[[int], None] | None = None, codec: str = "utf-8") -> IngestResult:
    """Parse NDJSON lines and append the valid ones (each chunk one transaction). Lines
    given as bytes are read in ``codec`` (a value of ``monitor.ingest.CHARSETS``).

    With ``max_lines`` None the lines are consumed as a stream, chunk by chunk, so memory
    stays bounded whatever their number; only the first ``MAX_KEPT_ERRORS`` invalid lines
    are kept in the result (all are counted)."""
    decision = authorize(container, principal, "report_events", None, ctx)
    now = utc_now()
    stream = max_lines is None
    own: Callable[[Session, int, int], object] | None = None
    if not stream:  # one request: refuse an oversized batch whole
        batch = parse_batch(lines, reporter=principal.id, now=now, max_lines=max_lines,
                            codec=codec)
        chunks: Iterable[ParsedBatch] = [batch]
        if tracking() and len(batch.events) <= chunk:
            # A served request's own event commits with the events it reported (one
            # transaction, not a second one for the request recorder, which writes the
            # request's event only when none committed: a batch without a valid line).
            labels = {"lines": str(batch.lines), "rejected": str(len(batch.errors))}
            if batch.errors:
                labels["http_status"] = "207"  # the answer to a batch with invalid lines

            def own(session: Session, low: int, high: int) -> object:
                return container.audit.record(
                    session, actor=principal, action="report_events", decision=decision,
                    rows=high - low + 1, **origin(ctx),
                    labels={**labels, "first_seq": str(low), "last_seq": str(high)})
    else:
        chunks = parse_chunks(lines, reporter=principal.id, now=now, chunk=chunk, codec=codec)
    first = last = None
    total = accepted = rejected = 0
    errors: list[LineError] = []
    for parsed in chunks:
        total += parsed.lines
        rejected += len(parsed.errors)
        errors.extend(parsed.errors[:max(0, MAX_KEPT_ERRORS - len(errors))])
        events = parsed.events
        parts = [events] if len(events) <= chunk else [
            events[start:start + chunk] for start in range(0, len(events), chunk)]
        for part in parts:
            if part:
                low, high = _append_part(container, part, now=now, stream=stream,
                                         own=own)
                first = first if first is not None else low
                last = high
                accepted += len(part)
                if progress is not None:
                    progress(len(part))
        del parsed, events, parts, part  # the chunk goes before the next one is awaited
    return IngestResult(total, accepted, first, last, tuple(errors),
                        None if rejected == len(errors) else rejected)


# -- search ---------------------------------------------------------------------------
def search(container: Container, principal: Principal, query: SearchQuery, *,
           ctx: RequestContext | None = None) -> SearchResult:
    """Search the trail; the search is recorded (filters, total) before results leave."""
    decision = authorize(container, principal, "audit_search", None, ctx)
    labels: dict[str, str] = {k: v for k, v in query.filters().items()}
    if query.since:
        labels["since"] = query.since.isoformat()
    if query.until:
        labels["until"] = query.until.isoformat()
    # Search terms may be personal data (a phone number): they go in the free-text
    # ``reason``, which the redactor sees, never in labels.
    reason = f"q: {query.q[:500]}" if query.q else None
    try:
        result: SearchResult = container.search.search(query)
    except MonitorError:
        _record(container, principal, "audit_search", decision=decision, outcome="failure",
                **origin(ctx), labels=labels, reason=reason)
        raise
    labels["backend"] = str(getattr(container.search, "last_backend", None)
                            or getattr(container.search, "name", "?"))
    _record(container, principal, "audit_search", decision=decision, rows=result.total,
            **origin(ctx), labels=labels, reason=reason)
    return result


def result_dict(result: SearchResult, query: SearchQuery, backend: str | None
                ) -> dict[str, object]:
    """The JSON shape of a search answer (HTTP and ``--format json``)."""
    return {
        "total": result.total,
        "page": query.page,
        "size": query.size,
        "backend": backend,
        "hits": [e.to_document() for e in result.hits],
        "aggs": {name: [{"key": b.key, "count": b.count} for b in buckets]
                 for name, buckets in result.aggs.items()},
    }


# -- trail ----------------------------------------------------------------------------
def status(container: Container, principal: Principal, *,
           ctx: RequestContext | None = None) -> dict[str, object]:
    """Trail head, last checkpoint, last verification, shipping (action ``audit_verify``)."""
    authorize(container, principal, "audit_verify", None, ctx)
    audit = container.audit
    with container.session() as session:
        gens = audit.store.generations(session)
        latest = audit.trail.latest(session)
        run = session.execute(sa.select(VERIFY_RUNS).order_by(VERIFY_RUNS.c.id.desc()).limit(1)
                              ).first()
    gen = gens[-1]
    head = gen.head
    out: dict[str, object] = {
        "head": {"seq": head.seq, "hash": head.hash.hex(),
                 "root": head.root(get_suite(gen.suite).hash).hex(),
                 "retained_from": min(g.head.pruned_below for g in gens) + 1,
                 "generation": gen.id, "suite": gen.suite, "first_seq": gen.first_seq},
        "generations": [{"generation": g.id, "suite": g.suite, "first_seq": g.first_seq,
                         "last_seq": g.head.seq, "handed_over_to": g.successor}
                        for g in gens],
        "last_checkpoint": None,
        "last_verify": None,
        "signing_key_id": audit.signer.key_id,
    }
    if latest is not None:
        cp = latest.checkpoint
        out["last_checkpoint"] = {
            "generation": cp.generation, "tree_size": cp.tree_size, "root": cp.root.hex(), "timestamp": cp.timestamp.isoformat(),
            "key_id": cp.key_id, "age_seconds": round((utc_now() - cp.timestamp).total_seconds(), 3),
            "exported": latest.exported.isoformat() if latest.exported else None,
        }
    if run is not None:
        out["last_verify"] = {
            "at": from_us(run.ts).isoformat(), "ok": bool(run.ok), "tree_size": run.tree_size,
            "bad_seq": run.bad_seq, "damage": run.damage, "detail": run.detail,
        }
    from quanguard.services.shipper import es_status  # Elasticsearch: not every command's

    out["elasticsearch"] = es_status(container)
    return out


def _sign(container: Container, *, exported: bool) -> Checkpoint:
    """Sign a checkpoint of the current head (no event: the caller records one)."""
    audit = container.audit
    now = utc_now()

    def tx() -> Checkpoint:
        with container.unit_of_work() as session:
            cp: Checkpoint = audit.checkpoint(session, now=now)
            if exported:
                stored = audit.trail.latest(session)  # the one just inserted
                assert stored is not None
                audit.trail.mark_exported(session, stored.id, now=now)
            return cp

    return with_retry(tx)


def checkpoint(container: Container, principal: Principal, *, export: Path | None = None,
               exported: bool = True, ctx: RequestContext | None = None) -> Checkpoint:
    """Sign a checkpoint of the current head; it counts as exported when handed out."""
    decision = authorize(container, principal, "audit_verify", None, ctx)
    cp = _sign(container, exported=exported)
    if export is not None:
        Path(export).write_text(cp.to_json() + "\n", encoding="utf-8")
    _record(container, principal, "audit_checkpoint", decision=decision, **origin(ctx),
            labels={"tree_size": str(cp.tree_size), "root": cp.root.hex(),
                    "exported": str(exported)})
    return cp


def proof(container: Container, principal: Principal, seq: int, *,
          ctx: RequestContext | None = None) -> dict[str, object]:
    """Inclusion proof of ``seq`` against the newest checkpoint covering it (signing a
    new one when none does); the checkpoint is included so the proof stands alone. One
    event (``audit_proof``) says whether a checkpoint was signed for it."""
    decision = authorize(container, principal, "audit_verify", None, ctx)
    audit = container.audit
    with container.session() as session:
        gen = audit.trail.generation_of(session, seq)
        final = audit.trail.final_checkpoint(session, gen.id) if gen.sealed else None
        latest = audit.trail.latest(session, gen.id)
    if final is not None:  # a sealed generation: its final checkpoint covers every event
        signed, cp = False, final
    else:
        signed = latest is None or latest.checkpoint.first_seq - 1 + latest.checkpoint.tree_size < seq
        cp = latest.checkpoint if latest is not None and not signed else _sign(container, exported=False)
    with container.session() as session:
        p = audit.trail.proof(session, seq, cp)
        body = session.execute(sa.select(EVENTS.c.body).where(EVENTS.c.seq == seq)).scalar_one()
    _record(container, principal, "audit_proof", decision=decision, **origin(ctx),
            labels={"seq": str(seq), "tree_size": str(cp.tree_size),
                    "checkpoint_signed": str(signed)})
    doc = proof_document(p, body, cp.hash_alg)
    doc["checkpoint"] = cp.to_dict()
    return doc


def consistency(container: Container, principal: Principal, old_size: int, *,
                generation: int = 1, ctx: RequestContext | None = None) -> dict[str, object]:
    """Consistency proof from the tree of ``old_size`` events (an exported checkpoint of
    ``generation``) to a fresh signed checkpoint: proves the trail only grew since. A
    checkpoint of a generation sealed by a hand-over is refused (Conflict): that
    generation no longer grows, ``audit verify --checkpoint`` holds the trail to it."""
    decision = authorize(container, principal, "audit_verify", None, ctx)
    with container.session() as session:
        current = container.audit.store.head(session).generation
    if generation != current:
        raise Conflict(
            f"the checkpoint is of trail generation {generation}; the trail is at generation "
            f"{current} after a crypto-suite hand-over, so no consistency proof spans them — "
            "verify with 'quanguard audit verify --checkpoint FILE' (the hand-over record "
            "links the generations)")
    cp = _sign(container, exported=False)
    with container.session() as session:
        path = container.audit.trail.consistency(session, old_size, cp)
    _record(container, principal, "audit_proof", decision=decision, **origin(ctx),
            labels={"consistency_from": str(old_size), "tree_size": str(cp.tree_size),
                    "checkpoint_signed": "True"})
    return consistency_document(old_size, path, cp)


def verify(container: Container, principal: Principal, external: Sequence[Checkpoint] = (), *,
           ctx: RequestContext | None = None) -> dict[str, object]:
    """Verify the trail, then record the outcome; re-raises ``Tampered`` naming the damage.

    Judges before it writes: the verification reads only. An intact trail gets an
    ``audit_verify`` event; a damaged one is never appended to (a new event would link to
    forged rows or collide with them) — the failed run goes to the verification log (the
    status page), and a failure to write even that does not hide the damage. The gate is
    asked first (action ``audit_verify``): only a refused caller's denial is written
    before the judgement."""
    decision = authorize(container, principal, "audit_verify", None, ctx)
    audit = container.audit
    started = time.perf_counter()
    error: Tampered | None = None
    gens: list[Generation] = []
    with container.session() as session:
        head = audit.store.head(session)
        # a generation sealed by a hand-over, or of another suite than this deployment's,
        # takes no event: the runs go to the log table only
        suite, _sealed, sealed_to = audit.store.trail_suite(session)
        writable = sealed_to is None and suite == audit.store.suite.name
        events = audit.store.count(session)
        try:
            gens = audit.trail.verify(session, external)
        except Tampered as exc:
            error = exc
    elapsed = time.perf_counter() - started

    def tx() -> None:
        with container.unit_of_work() as session:
            session.execute(VERIFY_RUNS.insert().values(
                ts=to_us(utc_now()), ok=error is None, tree_size=head.seq,
                bad_seq=error.seq if error else None, damage=error.damage if error else None,
                detail=error.detail if error else None))
            if error is None and writable:
                audit.record(session, actor=principal, action="audit_verify", decision=decision,
                             **origin(ctx),
                             labels={"tree_size": str(head.seq),
                                     "external_checkpoints": str(len(external))})

    if error is None:
        with_retry(tx)
        out: dict[str, object] = {
               "ok": True, "events": events, "tree_size": head.seq,
               "checkpoints_checked": len(external), "seconds": round(elapsed, 3),
               "generations": [{"generation": g.id, "suite": g.suite,
                                "first_seq": g.first_seq, "last_seq": g.head.seq,
                                "handed_over_to": g.successor} for g in gens]}
        return {**out, "handed_over_to": sealed_to} if sealed_to else out
    log = logging.getLogger("quanguard.audit")
    log.error("audit trail damaged: %s", error)
    try:
        with_retry(tx)
    except Exception:
        log.exception("could not log the failed verification run")
    raise error


def purge_old(container: Container, principal: Principal, *, force_partial: bool = False,
              dry_run: bool = False, now: datetime | None = None) -> dict[str, object]:
    """Retention: purge events older than ``retention_days`` that an exported checkpoint
    covers; refuses (conflict) when older events are not covered, unless forced."""
    decision = authorize(container, principal, "audit_purge", None, None)
    audit = container.audit
    now = now or utc_now()

    def tx() -> dict[str, object]:
        with container.unit_of_work() as session:
            plan = plan_purge(session, audit.store,
                              exported_size=audit.trail.exported_size(session), now=now,
                              retention_days=int(container.settings.retention_days))
            deleted = 0 if dry_run else purge(session, audit.store, plan,
                                              force_partial=force_partial)
            if not dry_run:
                audit.record(session, actor=principal, action="audit_purge", decision=decision,
                             labels={"deleted": str(deleted),
                                     "through_seq": str(plan.purge_through),
                                     "cutoff": plan.cutoff.isoformat()})
            return {"cutoff": plan.cutoff.isoformat(), "old_events": plan.candidates,
                    "not_covered": plan.blocked, "purge_through_seq": plan.purge_through,
                    "deleted": deleted, "dry_run": dry_run}

    return with_retry(tx)


# -- alerts ---------------------------------------------------------------------------
def list_alerts(container: Container, principal: Principal, *, status: str | None = None,
                rule: str | None = None, actor: str | None = None, limit: int = 100,
                offset: int = 0, ctx: RequestContext | None = None) -> list[Alert]:
    """Alerts, newest first, filtered (action ``alert_read``; the listing itself is not
    an event, a refusal is)."""
    authorize(container, principal, "alert_read", None, ctx)
    with container.session() as session:
        return list(container.alerts.list(session, status=status or None, rule=rule,
                                          actor=actor, limit=limit, offset=offset))


def update_alert(container: Container, principal: Principal, alert_id: str, *, status: str,
                 note: str | None = None, ctx: RequestContext | None = None) -> Alert:
    """Acknowledge / close / reopen an alert (action ``alert_update``); recorded in the
    same transaction."""
    decision = authorize(container, principal, "alert_update", None, ctx)

    def tx() -> Alert:
        with container.unit_of_work() as session:
            alert = container.alerts.update(session, alert_id, status=status, note=note)
            container.audit.record(session, actor=principal, action="alert_update",
                                   decision=decision, reason=note, **origin(ctx),
                                   labels={"alert": alert_id, "status": status,
                                           "rule": alert.rule})
            return alert
    return with_retry(tx)
