"""Switching crypto suites end to end: refusal to mix, the hand-over, datasets re-sealed
under SM4, consent withdrawals kept across the switch, receipts of either suite offline."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pytest
import sqlalchemy as sa

from exchange import Caller, Grading, ReceiptInvalid, verify_receipt
from exchange import consent as consent_mod
from exchange.receipts import ReceiptSigner, result_digest
from exchange.tables import datasets
from gmcrypto import SuiteMismatch as CryptoSuiteMismatch
from monitor.checkpoint import Checkpoint, verify_checkpoint
from monitor.errors import SuiteMismatch
from quanguard.auth import Principal
from quanguard.container import Container, build_container
from quanguard.errors import Conflict
from quanguard.usecases.handover import handover
from quanguard.usecases.rotate import rotate_master
from tests.conftest import make_settings

OWNER = Caller(id="p-1", role="provider", org="市人社局")
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, object]:
    return {"db_url": f"sqlite:///{tmp_path / 'q.db'}", "key_dir": tmp_path / "keys",
            "data_dir": tmp_path / "var"}


@pytest.fixture
def make(tmp_path: Path, dirs: dict[str, object]) -> Iterator[Callable[[str], Container]]:
    made: list[Container] = []

    def _make(crypto: str) -> Container:
        c = build_container(make_settings(tmp_path, crypto=crypto, **dirs))
        made.append(c)
        return c

    yield _make
    for c in made:
        c.close()


def _register(c: Container, name: str) -> pa.Table:
    table = pa.table({"id": [f"k{i}" for i in range(20)], "amount": list(range(20))})
    with c.session() as s, s.begin():
        c.exchange.catalog.register(s, name=name, table=table, owner=OWNER,
                                    grading=Grading("L2"), now=NOW, key_columns=["id"])
    return table


def _load(c: Container, name: str) -> pa.Table:
    with c.session() as s:
        return c.exchange.catalog.load_table(s, name)


def test_gm_datasets_are_sm4_gcm_sealed(make: Callable[[str], Container]) -> None:
    c = make("gm")
    table = _register(c, "g")
    with c.session() as s:
        blob = c.exchange.catalog.blob_path(s, "g").read_bytes()
        wrapped = s.execute(sa.select(datasets.c.wrapped_key)).scalar_one()
    assert blob.startswith(b"quanguard-suite=gm;") and bytes(wrapped).startswith(b"quanguard-suite=gm;")
    assert _load(c, "g").equals(table)


def test_switching_datasets_to_gm_reseals_them_and_keeps_withdrawals(make: Callable[[str], Container]) -> None:
    intl = make("intl")
    table = _register(intl, "a")
    with intl.session() as s, s.begin():
        consent_mod.set_consent(s, dataset="a", hash_key=intl.exchange.master.subject_hasher("a"),
                                subjects=["k3"], purpose="*", state="withdrawn", now=NOW)
    gm = make("gm")
    # never mixed silently: an intl dataset does not open under gm until it is re-sealed
    with pytest.raises(CryptoSuiteMismatch, match="rotate-master"):
        _load(gm, "a")
    done = rotate_master(gm, _admin(gm))
    assert done.datasets == 1
    fresh = make("gm")
    assert _load(fresh, "a").equals(table)
    with fresh.session() as s:
        blob = fresh.exchange.catalog.blob_path(s, "a").read_bytes()
        withdrawn = consent_mod.withdrawn_hashes(s, dataset="a", purpose="x")
    assert blob.startswith(b"quanguard-suite=gm;")
    kept = consent_mod.exclude_withdrawn(
        table, key_column="id", hash_key=fresh.exchange.master.subject_hasher("a"),
        withdrawn=withdrawn)
    assert "k3" not in kept.column("id").to_pylist() and kept.num_rows == 19
    # the intl deployment now refuses the gm datasets, naming the way back
    back = make("intl")
    with pytest.raises(CryptoSuiteMismatch):
        _load(back, "a")


def _admin(c: Container) -> Principal:
    from quanguard.auth import LOCAL_OPERATOR

    return LOCAL_OPERATOR


def test_handover_starts_a_gm_generation_in_the_same_database(make: Callable[[str], Container], tmp_path: Path) -> None:
    from monitor.search import SearchQuery
    from monitor.trail import verify_proof_document
    from quanguard.usecases.audit import consistency, proof, status, verify

    intl = make("intl")
    with intl.session() as s, s.begin():
        intl.audit.record(s, actor=_admin(intl), action="scan")
    gm = make("gm")
    with gm.session() as s, s.begin(), pytest.raises(SuiteMismatch, match="QUANGUARD_CRYPTO=intl"):
        gm.audit.record(s, actor=_admin(gm), action="scan")
    old_proof = proof(intl, _admin(intl), 1)  # exported from generation 1 before the switch
    final = handover(intl, _admin(intl), "gm", tmp_path / "final.json")
    doc = json.loads((tmp_path / "final.json").read_text())
    assert doc["handover"] == "gm" and doc["hash_alg"] == "sha256"
    verify_checkpoint(Checkpoint.from_dict(doc), expected_key_id=intl.audit.signer.key_id)
    assert final.tree_size >= 3  # the scan, proof and audit_handover events
    # the intl deployment no longer appends: the current generation is gm
    with intl.session() as s, s.begin(), pytest.raises(SuiteMismatch, match="QUANGUARD_CRYPTO=gm"):
        intl.audit.record(s, actor=_admin(intl), action="scan")
    # the gm deployment appends to generation 2 of the same database, seqs running on
    gm2 = make("gm")
    with gm2.session() as s, s.begin():
        seq = gm2.audit.record(s, actor=_admin(gm2), action="scan")
    assert seq == final.tree_size + 2  # after the hand-over record that opens generation 2
    result: dict[str, Any] = verify(gm2, _admin(gm2), [final])
    assert [(g["generation"], g["suite"]) for g in result["generations"]] == [(1, "intl"),
                                                                           (2, "gm")]
    # search and the console see every generation
    hits = gm2.search.search(SearchQuery(size=100)).hits
    assert {h.seq for h in hits} >= set(range(1, seq + 1))
    st: dict[str, Any] = status(gm2, _admin(gm2))
    assert st["head"]["generation"] == 2 and st["head"]["suite"] == "gm"
    # a proof from generation 1 (old, and new against the final checkpoint) verifies offline
    verify_proof_document(old_proof, Checkpoint.from_dict(old_proof["checkpoint"]))
    again: dict[str, Any] = proof(gm2, _admin(gm2), 1)
    assert again["checkpoint"]["handover"] == "gm"
    verify_proof_document(json.loads(json.dumps(again)), final)
    # and one of generation 2 against a format-3 SM2 checkpoint
    new: dict[str, Any] = proof(gm2, _admin(gm2), seq)
    assert new["checkpoint"]["signature_alg"] == "sm2-sm3" and new["first_seq"] == seq - 1
    verify_proof_document(json.loads(json.dumps(new)), Checkpoint.from_dict(new["checkpoint"]))
    # the old deployment still verifies both generations (it records no event: it cannot
    # append to a gm generation), and no consistency proof spans the hand-over
    assert cast(Any, verify(intl, _admin(intl)))["generations"][1]["suite"] == "gm"
    with pytest.raises(Conflict, match="generation 1"):
        consistency(gm2, _admin(gm2), 2, generation=1)
    # a second hand-over of generation 1 is refused; generation 2 can hand back to intl
    with pytest.raises(Conflict, match="QUANGUARD_CRYPTO=gm"):
        handover(intl, _admin(intl), "gm", tmp_path / "again.json")
    back = handover(gm2, _admin(gm2), "intl", tmp_path / "back.json")
    assert back.generation == 2 and back.signature_alg == "sm2-sm3"
    intl2 = make("intl")
    assert cast(Any, verify(intl2, _admin(intl2)))["generations"][-1] == {
        "generation": 3, "suite": "intl", "first_seq": back.first_seq + back.tree_size,
        "last_seq": back.first_seq + back.tree_size, "handed_over_to": None}


@pytest.mark.parametrize("crypto", ["intl", "gm"])
def test_receipts_name_their_algorithms_and_verify_offline(tmp_path: Path, crypto: str) -> None:
    from gmcrypto import get_suite

    suite = get_suite(crypto)
    signer = ReceiptSigner.from_dir(tmp_path, suite)
    rows = [{"g": "a", "n": 3}]
    r = signer.sign(job="j1", kind="aggregate", dataset="d", dataset_digest="00", query={},
                    epsilon_spent=0.5, delta_spent=0.0, result_digest=result_digest(rows, suite),
                    issued_at=NOW.isoformat())
    assert (r["hash_alg"], r["signature_alg"]) == (suite.hash_alg, suite.sign_alg)
    doc = json.loads(json.dumps(r))
    verify_receipt(doc, result=rows, public_key=signer.public_key)
    for field, value in [("signature_alg", "ed25519" if crypto == "gm" else "sm2-sm3"),
                         ("hash_alg", "sm3" if crypto == "intl" else "sha256"),
                         ("epsilon_spent", 0.1)]:
        with pytest.raises(ReceiptInvalid):
            verify_receipt({**doc, field: value}, result=rows)
    with pytest.raises(ReceiptInvalid):
        verify_receipt(doc, result=[{"g": "a", "n": 4}])


def test_only_a_key_admin_may_hand_over_and_a_refusal_is_recorded(make: Callable[[str], Container], tmp_path: Path) -> None:
    from quanguard.auth import Principal
    from quanguard.errors import Forbidden

    c = make("intl")
    consumer = Principal(id="c-1", name="c", role="consumer", org="市卫健委")
    with pytest.raises(Forbidden):
        handover(c, consumer, "gm", tmp_path / "final.json")
    assert not (tmp_path / "final.json").exists()
    with c.session() as s:
        assert c.audit.store.trail_suite(s)[1] is None  # not sealed
        bodies = [r[0] for r in s.execute(sa.text("SELECT body FROM audit_events"))]
    assert any("audit_handover" in b and "deny" in b for b in bodies)


def test_handover_to_the_same_or_an_unknown_suite_is_refused(make: Callable[[str], Container], tmp_path: Path) -> None:
    from quanguard.errors import InvalidInput

    c = make("intl")
    for target in ("intl", "nist"):
        with pytest.raises(InvalidInput):
            handover(c, _admin(c), target, tmp_path / "final.json")


def test_a_trail_from_before_generations_upgrades_and_hands_over(make: Callable[[str], Container], tmp_path: Path) -> None:
    """Migration 0015 on a store made before it: the head row gets ``base`` and checkpoints
    ``generation``; the old trail verifies as generation 1 and can be handed over."""
    from quanguard.db import migrate
    from quanguard.usecases.audit import verify

    c = make("intl")
    with c.session() as s, s.begin():
        for _ in range(3):
            c.audit.record(s, actor=_admin(c), action="scan")
    with c.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE audit_head DROP COLUMN base")
        conn.exec_driver_sql("ALTER TABLE audit_checkpoints DROP COLUMN generation")
        conn.exec_driver_sql("DELETE FROM alembic_version "
                             "WHERE version_num = '0015_audit_generations'")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('0008_audit_suite')")
    migrate(c.engine)
    heads = {c["name"] for c in sa.inspect(c.engine).get_columns("audit_head")}
    assert "base" in heads
    fresh = make("intl")
    assert [g["generation"] for g in cast(Any, verify(fresh, _admin(fresh)))["generations"]] == [1]
    final = handover(fresh, _admin(fresh), "gm", tmp_path / "final.json")
    gm = make("gm")
    assert [g["suite"] for g in cast(Any, verify(gm, _admin(gm), [final]))["generations"]] == ["intl", "gm"]


def test_a_trail_sealed_before_generations_gets_its_next_generation(make: Callable[[str], Container], tmp_path: Path) -> None:
    """A hand-over made by the earlier release only sealed the trail (the new trail went
    to a new database). Running the hand-over again opens the next generation here."""
    from quanguard.usecases.audit import verify

    c = make("intl")
    with c.session() as s, s.begin():
        c.audit.record(s, actor=_admin(c), action="scan")
        old_final = c.audit.trail.checkpoint(s, handover="gm")  # the earlier release's seal
    gm = make("gm")
    with gm.session() as s, s.begin(), pytest.raises(SuiteMismatch):
        gm.audit.record(s, actor=_admin(gm), action="scan")
    again = handover(c, _admin(c), "gm", tmp_path / "final.json")
    assert again == old_final
    with gm.session() as s, s.begin():
        gm.audit.record(s, actor=_admin(gm), action="scan")
    assert [g["suite"] for g in cast(Any, verify(gm, _admin(gm), [again]))["generations"]] == ["intl", "gm"]
    with pytest.raises(Conflict):  # and only once
        handover(c, _admin(c), "gm", tmp_path / "again.json")
