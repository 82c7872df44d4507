"""The trail under both crypto suites: SM3/SM2 trails, no mixing, the hand-over."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gmcrypto import GM, INTL, Suite
from monitor.checkpoint import (
    FORMAT_V1,
    Checkpoint,
    load_or_create_signer,
    sign_checkpoint,
    verify_checkpoint,
)
from monitor.errors import CheckpointError, SuiteMismatch, Tampered
from monitor.events import AuditEvent
from monitor.merkle import leaf_hash, tree_root
from monitor.store import AuditStore, create_schema
from monitor.trail import Trail, proof_document, verify_proof_document

SUITES = [pytest.param(INTL, id="intl"), pytest.param(GM, id="gm")]


@pytest.fixture
def db(tmp_path: Path) -> sa.Engine:
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'trail.db'}")
    create_schema(eng)
    return eng


def _trail(tmp_path: Path, suite: Suite) -> Trail:
    return Trail(AuditStore(suite), load_or_create_signer(tmp_path / f"keys-{suite.name}", suite))


@pytest.mark.parametrize("suite", SUITES)
def test_trail_hashes_and_signs_with_its_suite(db: sa.Engine, tmp_path: Path, make_event: Callable[..., AuditEvent], suite: Suite) -> None:
    trail = _trail(tmp_path, suite)
    with Session(db) as s, s.begin():
        trail.store.append(s, [make_event() for _ in range(5)])
        cp = trail.checkpoint(s)
    with Session(db) as s:
        rows = list(trail.store.iter_range(s))
        # the leaf is the suite's hash of 0x00 || body (RFC 6962 structure, SM3 or SHA-256)
        assert rows[0].leaf_hash == suite.hash(b"\x00" + rows[0].body.encode())
        assert cp.root == tree_root([r.leaf_hash for r in rows], h=suite.hash)
        trail.verify(s)
        proof = trail.proof(s, 3, cp)
    doc = cp.to_dict()
    assert (doc["hash_alg"], doc["signature_alg"]) == (suite.hash_alg, suite.sign_alg)
    assert len(base64.b64decode(doc["public_key"])) == (65 if suite is GM else 32)
    # offline: the verifier reads the suite from the documents
    pdoc = json.loads(json.dumps(proof_document(proof, rows[2].body, cp.hash_alg)))
    verify_proof_document(pdoc, Checkpoint.from_json(cp.to_json()), expected_key_id=cp.key_id)


@pytest.mark.parametrize(("made", "running"), [(INTL, GM), (GM, INTL)], ids=["intl>gm", "gm>intl"])
def test_a_trail_refuses_to_append_under_another_suite(db: sa.Engine, tmp_path: Path, make_event: Callable[..., AuditEvent], made: Suite, running: Suite) -> None:
    with Session(db) as s, s.begin():
        AuditStore(made).append(s, [make_event()])
    with Session(db) as s, s.begin(), pytest.raises(SuiteMismatch) as err:
        AuditStore(running).append(s, [make_event()])
    assert f"QUANGUARD_CRYPTO={made.name}" in str(err.value)
    assert "handover" in str(err.value)
    with Session(db) as s, pytest.raises(SuiteMismatch):
        _trail(tmp_path, running).verify(s)
    with Session(db) as s:
        assert AuditStore(made).count(s) == 1  # nothing was mixed in


def test_a_checkpoint_of_the_other_suite_is_not_a_reference(db: sa.Engine, tmp_path: Path, make_event: Callable[..., AuditEvent]) -> None:
    trail = _trail(tmp_path, GM)
    with Session(db) as s, s.begin():
        trail.store.append(s, [make_event() for _ in range(3)])
    other = _trail(tmp_path, INTL)
    with Session(db) as s:
        head = trail.store.head(s)
    foreign = sign_checkpoint(other.signer, tree_size=3, root=head.root(GM.hash),
                              chain_hash=head.hash, timestamp=head_time())
    with Session(db) as s, pytest.raises((SuiteMismatch, Tampered)):
        trail.verify(s, [foreign])


def head_time() -> datetime:
    from monitor.events import utc_now

    return utc_now()


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("field", ["hash_alg", "signature_alg", "handover"])
def test_the_algorithm_names_are_signed(tmp_path: Path, suite: Suite, field: str) -> None:
    signer = load_or_create_signer(tmp_path / "k", suite)
    cp = sign_checkpoint(signer, tree_size=1, root=bytes(32), chain_hash=bytes(32),
                         timestamp=head_time())
    doc = cp.to_dict()
    doc[field] = {"hash_alg": "sm3" if suite is INTL else "sha256",
                  "signature_alg": "sm2-sm3" if suite is INTL else "ed25519",
                  "handover": "gm"}[field]
    with pytest.raises(Tampered):
        verify_checkpoint(Checkpoint.from_dict(doc))


def test_an_unknown_signature_algorithm_fails_closed(tmp_path: Path) -> None:
    cp = sign_checkpoint(load_or_create_signer(tmp_path / "k"), tree_size=1, root=bytes(32),
                         chain_hash=bytes(32), timestamp=head_time())
    doc = {**cp.to_dict(), "signature_alg": "none"}
    with pytest.raises(Tampered, match="unknown signature algorithm"):
        verify_checkpoint(Checkpoint.from_dict(doc))


def test_checkpoints_from_before_the_suites_still_verify(tmp_path: Path) -> None:
    signer = load_or_create_signer(tmp_path / "k")
    old = Checkpoint(tree_size=2, root=bytes(32), chain_hash=bytes(32), timestamp=head_time(),
                     key_id=signer.key_id, public_key=signer.public_b64(), format=FORMAT_V1)
    old = Checkpoint(**{**old.__dict__, "signature": signer.sign(old.message())})
    doc = old.to_dict()
    assert doc["format"] == FORMAT_V1 and "hash_alg" not in doc
    again = Checkpoint.from_dict(doc)
    verify_checkpoint(again)
    assert (again.hash_alg, again.signature_alg) == ("sha256", "ed25519")


def test_a_gm_proof_cannot_pass_as_sha256(db: sa.Engine, tmp_path: Path, make_event: Callable[..., AuditEvent]) -> None:
    trail = _trail(tmp_path, GM)
    with Session(db) as s, s.begin():
        trail.store.append(s, [make_event() for _ in range(4)])
        cp = trail.checkpoint(s)
    with Session(db) as s:
        proof = trail.proof(s, 2, cp)
        body = next(iter(trail.store.iter_range(s, 2, 2))).body
    doc = proof_document(proof, body, "sha256")  # a lie about the hash
    from monitor.errors import ProofInvalid

    with pytest.raises(ProofInvalid, match="checkpoint signs a sm3 tree"):
        verify_proof_document(doc, cp)
    assert leaf_hash(body.encode(), GM.hash) == proof.leaf_hash


def test_handover_seals_the_old_trail_with_a_signed_final_checkpoint(db: sa.Engine, tmp_path: Path, make_event: Callable[..., AuditEvent]) -> None:
    old = _trail(tmp_path, INTL)
    with Session(db) as s, s.begin():
        old.store.append(s, [make_event() for _ in range(4)])
        final = old.checkpoint(s, handover="gm")
    assert final.handover == "gm" and final.to_dict()["handover"] == "gm"
    verify_checkpoint(final, expected_key_id=old.signer.key_id)
    with Session(db) as s:
        old.verify(s, [final])  # the old trail still verifies, up to its final checkpoint
        assert old.store.trail_suite(s)[2] == "gm"
    # sealed: no append, no further checkpoint, under either suite
    with Session(db) as s, s.begin(), pytest.raises(SuiteMismatch, match="handed over"):
        old.store.append(s, [make_event()])
    with Session(db) as s, s.begin(), pytest.raises(SuiteMismatch, match="handed over"):
        old.checkpoint(s)
    with Session(db) as s, s.begin(), pytest.raises(SuiteMismatch):
        AuditStore(GM).append(s, [make_event()])


def test_a_trail_key_of_another_suite_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="one crypto suite"):
        Trail(AuditStore(GM), load_or_create_signer(tmp_path / "k", INTL))
