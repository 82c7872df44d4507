"""One regression test per tamper kind (and the fail-closed cases)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gmcrypto import get_suite
from monitor.chain import GENESIS, chain_hash
from monitor.checkpoint import Checkpoint, load_or_create_signer, read_checkpoint_file
from monitor.errors import CheckpointError, Tampered
from monitor.merkle import Accumulator, leaf_hash
from monitor.store import EVENTS, HEAD, AuditStore, pack
from monitor.trail import Trail

N = 12


@pytest.fixture
def sealed(engine: sa.Engine, trail: Trail, filled: Callable[[int], None]) -> Checkpoint:
    """N events and a signed checkpoint over them (the 'exported' one)."""
    filled(N)
    with Session(engine) as s, s.begin():
        return trail.checkpoint(s)


def run_verify(engine: sa.Engine, trail: Trail, *external: Checkpoint) -> None:
    with Session(engine) as s:
        trail.verify(s, external)


def expect(engine: sa.Engine, trail: Trail, seq: int | None, damage: str,
           *external: Checkpoint) -> Tampered:
    with pytest.raises(Tampered) as info:
        run_verify(engine, trail, *external)
    assert (info.value.seq, info.value.damage) == (seq, damage), str(info.value)
    return info.value


def sql(engine: sa.Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for st in statements:
            conn.exec_driver_sql(st)


def rehash(engine: sa.Engine, start: int = 1) -> None:
    """A careful attacker: recompute leaf hashes, the chain and the head after editing."""
    store = AuditStore(get_suite(os.environ.get("QUANGUARD_CRYPTO")))  # the run's suite
    with Session(engine) as s, s.begin():
        rows = list(store.iter_range(s))
        prev, acc = GENESIS, Accumulator(h=store.hash)
        for r in rows:
            leaf = leaf_hash(r.body.encode(), store.hash)
            h = chain_hash(prev, leaf, store.hash)
            if r.seq >= start:
                s.execute(sa.update(EVENTS).where(EVENTS.c.seq == r.seq)
                          .values(leaf_hash=leaf, prev_hash=prev, hash=h))
            acc.append(leaf)
            prev = h
        s.execute(sa.update(HEAD).values(seq=rows[-1].seq, hash=prev,
                                         frontier=pack(acc.frontier)))
    # the attacker also removes the stored checkpoints; only the exported one remains
    sql(engine, "DELETE FROM audit_checkpoints")


def test_intact_trail_verifies(engine: sa.Engine, trail: Trail, sealed: Checkpoint) -> None:
    run_verify(engine, trail, sealed)


def test_empty_trail_fails_closed(engine: sa.Engine, trail: Trail) -> None:
    expect(engine, trail, None, "truncated")


def test_modified_column(engine: sa.Engine, trail: Trail, sealed: Checkpoint) -> None:
    sql(engine, "UPDATE audit_events SET actor = 'someone_else' WHERE seq = 5")
    expect(engine, trail, 5, "modified")


def test_modified_body(engine: sa.Engine, trail: Trail, sealed: Checkpoint) -> None:
    sql(engine, "UPDATE audit_events SET body = replace(body, '\"rows\":70', '\"rows\":1') "
        "WHERE seq = 8", "UPDATE audit_events SET rows = 1 WHERE seq = 8")
    expect(engine, trail, 8, "modified")


def test_modified_hash_column(engine: sa.Engine, trail: Trail, sealed: Checkpoint) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(EVENTS).where(EVENTS.c.seq == 3).values(hash=b"\x11" * 32))
    expect(engine, trail, 3, "modified")


def test_modified_and_rehashed_is_caught_by_exported_checkpoint(
    engine: sa.Engine, trail: Trail, sealed: Checkpoint
) -> None:
    sql(engine, "UPDATE audit_events SET body = replace(body, 'purpose 4', 'purpose X'), "
        "purpose = 'purpose X' WHERE seq = 5")
    rehash(engine, 5)
    expect(engine, trail, N, "modified", sealed)


def test_deleted_row(engine: sa.Engine, trail: Trail, sealed: Checkpoint) -> None:
    sql(engine, "DELETE FROM audit_events WHERE seq = 6")
    expect(engine, trail, 6, "deleted")


def test_deleted_and_renumbered(engine: sa.Engine, trail: Trail, sealed: Checkpoint) -> None:
    sql(engine, "DELETE FROM audit_events WHERE seq = 6")
    for seq in range(7, N + 1):
        sql(engine, f"UPDATE audit_events SET seq = {seq - 1} WHERE seq = {seq}")
    expect(engine, trail, 6, "deleted")


def test_inserted_after_head(engine: sa.Engine, trail: Trail, store: AuditStore,
                             sealed: Checkpoint) -> None:
    with engine.begin() as conn:
        row = dict(conn.execute(sa.select(EVENTS).where(EVENTS.c.seq == N)).one()._mapping)
        row.update(seq=N + 1, id="forged")
        conn.execute(EVENTS.insert().values(**row))
    expect(engine, trail, N + 1, "inserted")


def test_inserted_in_the_middle(engine: sa.Engine, trail: Trail, sealed: Checkpoint) -> None:
    for seq in range(N, 3, -1):
        sql(engine, f"UPDATE audit_events SET seq = {seq + 1} WHERE seq = {seq}")
    with engine.begin() as conn:
        row = dict(conn.execute(sa.select(EVENTS).where(EVENTS.c.seq == 3)).one()._mapping)
        row.update(seq=4, id="forged")
        conn.execute(EVENTS.insert().values(**row))
        conn.execute(sa.update(HEAD).values(seq=N + 1))
    err = expect(engine, trail, 4, "inserted")
    assert "seq 3" in err.detail


def test_reordered_rows(engine: sa.Engine, trail: Trail, sealed: Checkpoint) -> None:
    with engine.begin() as conn:
        a = dict(conn.execute(sa.select(EVENTS).where(EVENTS.c.seq == 4)).one()._mapping)
        b = dict(conn.execute(sa.select(EVENTS).where(EVENTS.c.seq == 7)).one()._mapping)
        conn.execute(sa.delete(EVENTS).where(EVENTS.c.seq.in_([4, 7])))
        conn.execute(EVENTS.insert().values(**{**b, "seq": 4}))
        conn.execute(EVENTS.insert().values(**{**a, "seq": 7}))
    expect(engine, trail, 4, "reordered")


def test_truncated_tail(engine: sa.Engine, trail: Trail, sealed: Checkpoint) -> None:
    sql(engine, f"DELETE FROM audit_events WHERE seq > {N - 3}")
    expect(engine, trail, N - 2, "truncated")


def test_truncated_and_head_rewound_caught_by_exported_checkpoint(
    engine: sa.Engine, trail: Trail, sealed: Checkpoint
) -> None:
    sql(engine, f"DELETE FROM audit_events WHERE seq > {N - 3}")
    rehash(engine)
    run_verify(engine, trail)  # without the outside checkpoint nothing can tell
    expect(engine, trail, N - 2, "truncated", sealed)


def test_forged_checkpoint_root(engine: sa.Engine, trail: Trail, sealed: Checkpoint) -> None:
    forged = replace(sealed, root=b"\x00" * 32)
    expect(engine, trail, N, "bad_signature", forged)


def test_checkpoint_signed_by_another_key(engine: sa.Engine, trail: Trail, sealed: Checkpoint,
                                          tmp_path: Path) -> None:
    from monitor.checkpoint import sign_checkpoint
    other = load_or_create_signer(tmp_path / "other")
    forged = sign_checkpoint(other, tree_size=sealed.tree_size, root=sealed.root,
                             chain_hash=sealed.chain_hash, timestamp=sealed.timestamp)
    expect(engine, trail, N, "bad_signature", forged)


def test_tampered_stored_checkpoint(engine: sa.Engine, trail: Trail, sealed: Checkpoint) -> None:
    doc = json.loads(sealed.to_json())
    doc["tree_size"] = N - 1
    with engine.begin() as conn:
        from monitor.store import CHECKPOINTS
        conn.execute(sa.update(CHECKPOINTS).values(body=json.dumps(doc)))
    expect(engine, trail, N - 1, "bad_signature")


def test_missing_checkpoint_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError):
        read_checkpoint_file(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CheckpointError):
        read_checkpoint_file(tmp_path / "bad.json")
    (tmp_path / "wrong.json").write_text('{"format": "other"}')
    with pytest.raises(CheckpointError):
        read_checkpoint_file(tmp_path / "wrong.json")


def test_checkpoint_json_round_trip(sealed: Checkpoint, tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    path.write_text(sealed.to_json())
    assert read_checkpoint_file(path) == sealed


# -- finding 9: damage to the head row and to stored checkpoints is named, not a crash --------
def test_head_frontier_does_not_match_size(engine: sa.Engine, trail: Trail,
                                           sealed: Checkpoint) -> None:
    with engine.begin() as conn:  # one subtree root too many for a tree of N events
        frontier = conn.execute(sa.select(HEAD.c.frontier)).scalar_one()
        conn.execute(sa.update(HEAD).values(frontier=bytes(frontier) + b"\x07" * 32))
    err = expect(engine, trail, N, "modified")
    assert "frontier" in err.detail


def test_head_rewound_by_one(engine: sa.Engine, trail: Trail, sealed: Checkpoint) -> None:
    sql(engine, "UPDATE audit_head SET seq = seq - 1")  # frontier of N, size says N - 1
    expect(engine, trail, N, "inserted")


def test_head_frontier_emptied(engine: sa.Engine, trail: Trail, sealed: Checkpoint) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(HEAD).values(frontier=b""))
    expect(engine, trail, N, "modified")


def test_head_frontier_with_a_short_hash(engine: sa.Engine, trail: Trail,
                                         sealed: Checkpoint) -> None:
    with engine.begin() as conn:
        frontier = conn.execute(sa.select(HEAD.c.frontier)).scalar_one()
        conn.execute(sa.update(HEAD).values(frontier=bytes(frontier)[:-1]))
    expect(engine, trail, N, "modified")


def test_retention_anchor_frontier_does_not_match(engine: sa.Engine, trail: Trail,
                                                  sealed: Checkpoint) -> None:
    sql(engine, "UPDATE audit_head SET pruned_below = 3")  # anchor frontier still empty
    expect(engine, trail, N, "modified")


def test_unreadable_stored_checkpoint(engine: sa.Engine, trail: Trail,
                                      sealed: Checkpoint) -> None:
    from monitor.store import CHECKPOINTS
    with engine.begin() as conn:
        conn.execute(sa.update(CHECKPOINTS).values(body="{not a checkpoint"))
    expect(engine, trail, N, "modified")


def test_verification_reads_only(engine: sa.Engine, trail: Trail, sealed: Checkpoint) -> None:
    """The verifier judges the trail as found: a damaged trail is left exactly as it was."""
    def snapshot() -> list[tuple[object, ...]]:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(EVENTS).order_by(EVENTS.c.seq))]

    sql(engine, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 5")
    before = snapshot()
    expect(engine, trail, 5, "modified")
    assert snapshot() == before


# -- the same through `quanguard audit verify`: exit 1 naming the damage, never exit 70 --------
@pytest.fixture
def cli(tmp_path: Path, cli_run: Callable[..., Any]) -> Callable[..., object]:
    lines = [json.dumps({"ts": f"2026-11-20T08:{i:02d}:00+08:00",
                         "actor": {"id": f"u{i % 3}", "role": "consumer", "org": "市局"},
                         "action": "query", "dataset": "d", "grade": "L2", "rows": i,
                         "decision": "allow"}) for i in range(N)]
    (tmp_path / "e.ndjson").write_text("\n".join(lines) + "\n")
    assert cli_run("audit", "ingest", "e.ndjson").exit_code == 0
    return cli_run


def _cli_db(tmp: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{tmp / 'var' / 'quanguard.db'}")


def _events(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(EVENTS).order_by(EVENTS.c.seq))]


def test_cli_forged_row_after_the_head(cli: Callable[..., object], tmp_path: Path) -> None:
    """Finding 9: the verifier used to append its own event first and collide (exit 70)."""
    eng = _cli_db(tmp_path)
    with eng.begin() as conn:
        last = conn.execute(sa.select(sa.func.max(EVENTS.c.seq))).scalar_one()
        row = dict(conn.execute(sa.select(EVENTS).where(EVENTS.c.seq == last)).one()._mapping)
        conn.execute(EVENTS.insert().values(**{**row, "seq": last + 1, "id": "forged"}))
    before = _events(eng)
    result = cli("audit", "verify")
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    assert f"seq {last + 1}: inserted" in result.stderr  # type: ignore[attr-defined]
    assert _events(eng) == before  # nothing appended to a damaged trail
    status = json.loads(cli("audit", "status", "--format", "json").stdout)  # type: ignore[attr-defined]
    assert status["last_verify"]["ok"] is False
    assert status["last_verify"]["damage"] == "inserted"
    eng.dispose()


def test_cli_head_row_frontier_mismatch(cli: Callable[..., object], tmp_path: Path) -> None:
    eng = _cli_db(tmp_path)
    with eng.begin() as conn:
        conn.execute(sa.update(HEAD).values(frontier=b""))
    before = _events(eng)
    result = cli("audit", "verify")
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    assert ": modified: the head row is inconsistent" in result.stderr  # type: ignore[attr-defined]
    assert _events(eng) == before
    eng.dispose()


def test_cli_head_rewound_by_one(cli: Callable[..., object], tmp_path: Path) -> None:
    eng = _cli_db(tmp_path)
    with eng.begin() as conn:
        conn.execute(sa.update(HEAD).values(seq=HEAD.c.seq - 1))
    before = _events(eng)
    result = cli("audit", "verify")
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    assert _events(eng) == before
    eng.dispose()


def test_cli_intact_trail_records_its_verification(cli: Callable[..., object],
                                                   tmp_path: Path) -> None:
    eng = _cli_db(tmp_path)
    before = len(_events(eng))
    result = cli("audit", "verify")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    after = _events(eng)
    assert len(after) == before + 1 and after[-1][7] == "audit_verify"
    eng.dispose()


def _named_trail(engine: sa.Engine, trail: Trail, make_event: Callable[..., Any]) -> None:
    """Event 1 has no display name, event 2 is named."""
    from monitor.events import Actor

    with Session(engine) as s, s.begin():
        trail.store.append(s, [make_event(actor=Actor("u1", "consumer", "市大数据局")),
                               make_event(actor=Actor("u2", "consumer", "市大数据局", "张三的账号"))])


def test_an_empty_name_column_of_an_older_trail_is_no_name(
        engine: sa.Engine, trail: Trail, make_event: Callable[..., Any]) -> None:
    # Before the store wrote an empty display name as NULL, a reporter's "name": "" was
    # stored as '' while the hashed body leaves the name out; such a trail is intact and
    # must not be reported as damaged.
    _named_trail(engine, trail, make_event)
    sql(engine, "UPDATE audit_events SET actor_name = '' WHERE seq = 1")
    run_verify(engine, trail)


def test_an_empty_name_column_cannot_hide_a_name(
        engine: sa.Engine, trail: Trail, make_event: Callable[..., Any]) -> None:
    _named_trail(engine, trail, make_event)
    sql(engine, "UPDATE audit_events SET actor_name = '' WHERE seq = 2")
    expect(engine, trail, 2, "modified")


def test_a_name_column_cannot_add_a_name(
        engine: sa.Engine, trail: Trail, make_event: Callable[..., Any]) -> None:
    _named_trail(engine, trail, make_event)
    sql(engine, "UPDATE audit_events SET actor_name = 'x' WHERE seq = 1")
    expect(engine, trail, 1, "modified")
