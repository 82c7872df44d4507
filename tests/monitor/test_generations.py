"""Trail generations: a hand-over between crypto suites starts the next generation in the
same database. Both verify, each under its own suite; the hand-over record links them.
Written as the attacks a forger or a careless operator would try."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gmcrypto import GM, INTL, Suite
from monitor.chain import chain_hash
from monitor.checkpoint import Checkpoint, load_or_create_signer
from monitor.errors import ProofInvalid, SuiteMismatch, Tampered
from monitor.events import AuditEvent
from monitor.merkle import Accumulator, leaf_hash
from monitor.retention import plan_purge, purge
from monitor.store import (
    CHECKPOINTS,
    EVENTS,
    HEAD,
    AuditStore,
    event_columns,
    from_us,
    pack,
)
from monitor.trail import Trail, proof_document, verify_proof_document

PAIRS = [pytest.param(INTL, GM, id="intl>gm"), pytest.param(GM, INTL, id="gm>intl")]


@pytest.fixture
def db(engine: sa.Engine) -> sa.Engine:
    """SQLite and PostgreSQL (``tests/monitor/conftest.py``)."""
    return engine


def _trail(tmp_path: Path, suite: Suite) -> Trail:
    return Trail(AuditStore(suite), load_or_create_signer(tmp_path / f"keys-{suite.name}", suite))


def _switch(db: sa.Engine, tmp_path: Path, make_event: Callable[..., AuditEvent], old: Suite, new: Suite, *,
            before: int = 5, after: int = 4
            ) -> tuple[Trail, Trail, Checkpoint, dict[str, Any], Checkpoint, AuditEvent, Checkpoint]:
    """A trail of ``before`` events under ``old``, handed over, ``after`` more under ``new``."""
    a, b = _trail(tmp_path, old), _trail(tmp_path, new)
    with Session(db) as s, s.begin():
        a.store.append(s, [make_event() for _ in range(before)])
        early = a.checkpoint(s)
    with Session(db) as s:
        proof = a.proof(s, 2, early)
        body = next(iter(a.store.iter_range(s, 2, 2))).body
    exported = json.loads(json.dumps(proof_document(proof, body, early.hash_alg)))
    with Session(db) as s, s.begin():
        final, first = a.hand_over(s, new, make_event(action="audit_handover"))
    with Session(db) as s, s.begin():
        b.store.append(s, [make_event() for _ in range(after)])
        cp2 = b.checkpoint(s)
    return a, b, early, exported, final, first, cp2


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_both_generations_verify_each_under_its_suite(db: sa.Engine, tmp_path: Path, make_event: Callable[..., AuditEvent], old: Suite, new: Suite) -> None:
    _a, b, early, _exported, final, first, cp2 = _switch(db, tmp_path, make_event, old, new)
    assert (final.tree_size, final.handover, final.generation) == (5, new.name, 1)
    assert first.seq == 6 and first.labels["previous_suite"] == old.name
    assert (cp2.generation, cp2.first_seq, cp2.tree_size) == (2, 6, 5)
    assert cp2.to_dict()["format"] == "quanguard-checkpoint/3"
    with Session(db) as s:
        rows = list(b.store.iter_range(s))
        gens = b.verify(s, [early, final, cp2])
        # the old deployment verifies too (its generation pinned by its own key)
        _a.verify(s, [final])
    assert [(g.id, g.suite, g.first_seq, g.head.seq) for g in gens] == [
        (1, old.name, 1, 5), (2, new.name, 6, 10)]
    # seqs run on across the hand-over; each generation hashes with its own suite
    assert [r.seq for r in rows] == list(range(1, 11))
    assert rows[0].leaf_hash == leaf_hash(rows[0].body.encode(), old.hash)
    assert rows[5].leaf_hash == leaf_hash(rows[5].body.encode(), new.hash)
    assert rows[5].prev_hash == bytes(32)  # the new chain starts at genesis


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_a_proof_exported_from_generation_1_verifies_offline_after_the_handover(
        db: sa.Engine, tmp_path: Path, make_event: Callable[..., AuditEvent], old: Suite, new: Suite) -> None:
    a, b, early, exported, final, _first, cp2 = _switch(db, tmp_path, make_event, old, new)
    verify_proof_document(exported, Checkpoint.from_json(early.to_json()),
                          expected_key_id=a.signer.key_id)
    with Session(db) as s:  # proofs served after the switch, old and new generation
        p1 = b.proof(s, 3, final)
        p2 = b.proof(s, 9, cp2)
        body1 = next(iter(b.store.iter_range(s, 3, 3))).body
        body2 = next(iter(b.store.iter_range(s, 9, 9))).body
    verify_proof_document(json.loads(json.dumps(proof_document(p1, body1, final.hash_alg))),
                          Checkpoint.from_json(final.to_json()), expected_key_id=a.signer.key_id)
    doc2 = json.loads(json.dumps(proof_document(p2, body2, cp2.hash_alg)))
    verify_proof_document(doc2, Checkpoint.from_json(cp2.to_json()),
                          expected_key_id=b.signer.key_id)
    # the leaf numbering of generation 2 is signed: a proof cannot be moved to another seq
    with pytest.raises(ProofInvalid):
        verify_proof_document({**doc2, "first_seq": 1}, cp2)
    with pytest.raises(ProofInvalid):
        verify_proof_document(doc2, final)


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_tamper_in_the_old_generation_is_detected_after_the_handover(
        db: sa.Engine, tmp_path: Path, make_event: Callable[..., AuditEvent], old: Suite, new: Suite) -> None:
    _a, b, *_ = _switch(db, tmp_path, make_event, old, new)
    with db.begin() as conn:
        body = conn.execute(sa.select(EVENTS.c.body).where(EVENTS.c.seq == 3)).scalar_one()
        conn.execute(sa.update(EVENTS).where(EVENTS.c.seq == 3)
                     .values(body=body.replace("purpose ", "purpase ")))
    with Session(db) as s, pytest.raises(Tampered) as err:
        b.verify(s)
    assert err.value.seq == 3


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_rewriting_a_whole_old_generation_is_caught_by_its_final_checkpoint(
        db: sa.Engine, tmp_path: Path, make_event: Callable[..., AuditEvent], old: Suite, new: Suite) -> None:
    """A forger changes an event of generation 1 and recomputes every leaf, chain hash and
    the head row: only the final checkpoint (which needs the old key) disagrees."""
    _a, b, *_ = _switch(db, tmp_path, make_event, old, new)
    with db.begin() as conn:
        rows = conn.execute(sa.select(EVENTS).where(EVENTS.c.seq <= 5)
                            .order_by(EVENTS.c.seq)).all()
        prev, acc = bytes(32), Accumulator(h=old.hash)
        for r in rows:
            body = r.body.replace(f'"rows":{r.rows}', f'"rows":{r.rows + 1}')
            leaf = leaf_hash(body.encode(), old.hash)
            h = chain_hash(prev, leaf, old.hash)
            conn.execute(sa.update(EVENTS).where(EVENTS.c.seq == r.seq).values(
                body=body, rows=r.rows + 1, leaf_hash=leaf, prev_hash=prev, hash=h))
            acc.append(leaf)
            prev = h
        conn.execute(sa.update(HEAD).where(HEAD.c.id == 1)
                     .values(hash=prev, frontier=pack(acc.frontier)))
    with Session(db) as s, pytest.raises(Tampered, match="do not match the checkpoint"):
        b.verify(s)


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_a_forged_final_checkpoint_or_link_is_detected(db: sa.Engine, tmp_path: Path, make_event: Callable[..., AuditEvent], old: Suite, new: Suite) -> None:
    _a, b, *_ = _switch(db, tmp_path, make_event, old, new)
    # the link in the first event of generation 2 is covered by generation 2's hashes
    with db.begin() as conn:
        body = conn.execute(sa.select(EVENTS.c.body).where(EVENTS.c.seq == 6)).scalar_one()
        digest = json.loads(body)["labels"]["previous_checkpoint"]
        conn.execute(sa.update(EVENTS).where(EVENTS.c.seq == 6).values(
            body=body.replace(digest, "0" * len(digest))))
    with Session(db) as s, pytest.raises(Tampered) as err:
        b.verify(s)
    assert err.value.seq == 6
    with db.begin() as conn:  # restore, then remove the final checkpoint instead
        conn.execute(sa.update(EVENTS).where(EVENTS.c.seq == 6).values(body=body))
    with Session(db) as s:
        b.verify(s)
    with db.begin() as conn:
        conn.execute(sa.delete(CHECKPOINTS).where(CHECKPOINTS.c.body.like('%"handover": "%')))
    with Session(db) as s, pytest.raises(Tampered, match="final checkpoint is missing"):
        b.verify(s)


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_appending_to_a_sealed_generation_is_refused(db: sa.Engine, tmp_path: Path, make_event: Callable[..., AuditEvent], old: Suite, new: Suite) -> None:
    a = _trail(tmp_path, old)
    with Session(db) as s, s.begin():
        a.store.append(s, [make_event() for _ in range(3)])
        a.checkpoint(s, handover=new.name)  # sealed, the next generation not opened
    for suite in (old, new):
        with Session(db) as s, s.begin(), pytest.raises(SuiteMismatch):
            AuditStore(suite).append(s, [make_event()])
    with Session(db) as s, s.begin(), pytest.raises(SuiteMismatch, match="is not sealed"):
        AuditStore(old).start_generation(s, old)  # only the named successor may follow
    with Session(db) as s:
        assert AuditStore(old).count(s) == 3
        a.verify(s)


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_mixing_suites_within_a_generation_is_refused_and_detected(
        db: sa.Engine, tmp_path: Path, make_event: Callable[..., AuditEvent], old: Suite, new: Suite) -> None:
    a, b, *_ = _switch(db, tmp_path, make_event, old, new)
    with Session(db) as s, s.begin(), pytest.raises(SuiteMismatch):
        a.store.append(s, [make_event()])  # the old suite into the new generation
    with Session(db) as s:
        assert b.store.head(s).seq == 10
        # a checkpoint of the other suite is no reference for generation 2
        with pytest.raises((SuiteMismatch, Tampered)):  # wrong key, and wrong hash
            b.verify(s, [_foreign(a, b, s)])
    # a row written behind the store's back with the other suite's hash is damage
    with db.begin() as conn:
        last = conn.execute(sa.select(EVENTS).where(EVENTS.c.seq == 10)).one()
        ev = make_event().stamped(11, make_event().ts)
        body = ev.canonical_bytes()
        leaf = leaf_hash(body, old.hash)
        conn.execute(EVENTS.insert().values(
            seq=11, body=body.decode(), leaf_hash=leaf, prev_hash=last.hash,
            hash=chain_hash(last.hash, leaf, old.hash), **event_columns(ev)))
        conn.execute(sa.update(HEAD).where(HEAD.c.id == 2).values(seq=11))
    with Session(db) as s, pytest.raises(Tampered) as err:
        b.verify(s)
    assert err.value.seq == 11


def _foreign(a: Trail, b: Trail, s: Session) -> Checkpoint:
    from monitor.checkpoint import sign_checkpoint
    from monitor.events import utc_now

    head = b.store.head(s)
    return sign_checkpoint(a.signer, tree_size=head.size, root=head.root(b.store.hash),
                           chain_hash=head.hash, timestamp=utc_now(), generation=2,
                           first_seq=head.base + 1)


def test_retention_purges_across_generations_and_the_trail_still_verifies(
        db: sa.Engine, tmp_path: Path, make_event: Callable[..., AuditEvent]) -> None:
    _a, b, _early, _exp, _final, _first, cp2 = _switch(db, tmp_path, make_event, INTL, GM,
                                                       before=20, after=6)
    with Session(db) as s, s.begin():
        # generation 1 is covered by its final checkpoint; generation 2 by an exported one
        assert b.exported_size(s) == 20
        latest = b.latest(s)
        assert latest is not None
        b.mark_exported(s, latest.id, now=cp2.timestamp)
        assert b.exported_size(s) == 27
        last_ts = max(int(cast(int, r.columns["ts"])) for r in b.store.iter_range(s))
        plan = plan_purge(s, b.store, exported_size=b.exported_size(s),
                          now=from_us(last_ts) + timedelta(days=400), retention_days=180)
        assert (plan.purge_through, plan.blocked) == (27, 0)
        assert purge(s, b.store, plan) == 27
    with Session(db) as s:
        assert b.store.count(s) == 0
        gens = b.verify(s)
        assert [g.head.pruned_below for g in gens] == [20, 27]
