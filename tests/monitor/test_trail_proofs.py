from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor.errors import EventNotFound, ProofInvalid, RetentionRefused, Tampered
from monitor.events import AuditEvent
from monitor.retention import plan_purge, purge
from monitor.store import EVENTS, AuditStore
from monitor.trail import Trail, proof_document, verify_proof_document


def proof_doc(engine: sa.Engine, trail: Trail, seq: int, cp: object) -> dict[str, object]:
    with Session(engine) as s:
        proof = trail.proof(s, seq, cp)  # type: ignore[arg-type]
        body = s.execute(sa.select(EVENTS.c.body).where(EVENTS.c.seq == seq)).scalar_one()
    doc: dict[str, object] = json.loads(json.dumps(proof_document(proof, body, trail.store.suite.hash_alg)))
    return doc


def test_every_event_has_a_verifying_proof(engine: sa.Engine, trail: Trail,
                                           filled: Callable[[int], None]) -> None:
    filled(23)
    with Session(engine) as s, s.begin():
        cp = trail.checkpoint(s)
    for seq in range(1, 24):
        verify_proof_document(proof_doc(engine, trail, seq, cp), cp,
                              expected_key_id=trail.signer.key_id)


@pytest.mark.parametrize("forgery", ["event", "seq", "tree_size", "path", "format", "leaf"])
def test_forged_proof_documents_fail(engine: sa.Engine, trail: Trail,
                                     filled: Callable[[int], None], forgery: str) -> None:
    filled(10)
    with Session(engine) as s, s.begin():
        cp = trail.checkpoint(s)
    doc = proof_doc(engine, trail, 4, cp)
    if forgery == "event":
        doc["event"] = str(doc["event"]).replace("purpose 3", "purpose 9")
    elif forgery == "seq":
        doc["seq"] = 5
    elif forgery == "tree_size":
        doc["tree_size"] = 11
    elif forgery == "path":
        doc["path"] = list(reversed(doc["path"]))  # type: ignore[call-overload]
    elif forgery == "format":
        doc["format"] = "x"
    else:
        doc["leaf_hash"] = "00" * 32
    with pytest.raises(ProofInvalid):
        verify_proof_document(doc, cp)


def test_proof_against_forged_checkpoint(engine: sa.Engine, trail: Trail,
                                         filled: Callable[[int], None]) -> None:
    from dataclasses import replace
    filled(5)
    with Session(engine) as s, s.begin():
        cp = trail.checkpoint(s)
    doc = proof_doc(engine, trail, 2, cp)
    with pytest.raises(Tampered):
        verify_proof_document(doc, replace(cp, tree_size=6))


def test_unknown_seq(engine: sa.Engine, trail: Trail, filled: Callable[[int], None]) -> None:
    filled(3)
    with Session(engine) as s, s.begin():
        cp = trail.checkpoint(s)
    with Session(engine) as s, pytest.raises(EventNotFound):
        trail.proof(s, 4, cp)


def test_retention_refuses_uncovered_then_purges_covered(
    engine: sa.Engine, trail: Trail, store: AuditStore,
    make_event: Callable[..., AuditEvent],
) -> None:
    now = datetime(2027, 12, 1, tzinfo=UTC)
    old = now - timedelta(days=400)
    with Session(engine) as s, s.begin():
        store.append(s, [make_event(ts=old + timedelta(minutes=i)) for i in range(20)])
        cp = trail.checkpoint(s)
        store.append(s, [make_event(ts=old + timedelta(days=1, minutes=i)) for i in range(5)])
        store.append(s, [make_event(ts=now - timedelta(days=1)) for _ in range(5)])
    with Session(engine) as s, s.begin():
        plan = plan_purge(s, store, exported_size=trail.exported_size(s), now=now,
                          retention_days=180)
        assert plan.blocked == 25 and plan.purge_through == 0
        with pytest.raises(RetentionRefused):
            purge(s, store, plan)
    with Session(engine) as s, s.begin():
        trail.mark_exported(s, 1, now=now)
        plan = plan_purge(s, store, exported_size=trail.exported_size(s), now=now,
                          retention_days=180)
        assert plan.purge_through == 20 and plan.blocked == 5
        with pytest.raises(RetentionRefused):
            purge(s, store, plan)
        assert purge(s, store, plan, force_partial=True) == 20
    with Session(engine) as s, s.begin():
        assert store.count(s) == 10
        cp2 = trail.checkpoint(s)
    # verification and proofs continue from the retention anchor
    with Session(engine) as s:
        trail.verify(s, [cp2])
        with pytest.raises(Exception, match="predates"):
            trail.verify(s, [cp])
    for seq in range(21, 31):
        verify_proof_document(proof_doc(engine, trail, seq, cp2), cp2)
    with Session(engine) as s, pytest.raises(EventNotFound):
        trail.proof(s, 20, cp2)


def test_retention_minimum(engine: sa.Engine, store: AuditStore) -> None:
    with Session(engine) as s, pytest.raises(RetentionRefused):
        plan_purge(s, store, exported_size=0, now=datetime.now(UTC), retention_days=30)


def test_consistency_between_checkpoints(engine: sa.Engine, trail: Trail,
                                         filled: Callable[[int], None]) -> None:
    from dataclasses import replace

    from monitor.trail import consistency_document, verify_consistency_document

    filled(13)
    with Session(engine) as s, s.begin():
        old = trail.checkpoint(s)
    filled(9)
    with Session(engine) as s, s.begin():
        new = trail.checkpoint(s)
    with Session(engine) as s:
        doc = json.loads(json.dumps(consistency_document(13, trail.consistency(s, 13, new), new)))
    assert verify_consistency_document(doc, old, expected_key_id=trail.signer.key_id) == new
    bad = dict(doc, proof=list(reversed(doc["proof"])))
    with pytest.raises(ProofInvalid):
        verify_consistency_document(bad, old)
    with pytest.raises(ProofInvalid):
        verify_consistency_document(dict(doc, old_size=12), old)
    with pytest.raises(Tampered):
        verify_consistency_document(doc, replace(old, root=b"\x01" * 32))
