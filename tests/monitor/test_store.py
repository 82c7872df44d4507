from __future__ import annotations

import ast
import inspect
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import monitor.store as store_mod
from monitor.chain import GENESIS, chain_hash
from monitor.events import Actor, AuditEvent
from monitor.merkle import leaf_hash, tree_root
from monitor.store import EVENTS, AuditStore
from monitor.trail import Trail
from tests.conftest import errors_on_threads


def test_append_assigns_seq_and_chains(engine: sa.Engine, store: AuditStore,
                                       make_event: Callable[..., AuditEvent]) -> None:
    with Session(engine) as s, s.begin():
        first = store.append(s, [make_event() for _ in range(5)])
        second = store.append(s, [make_event() for _ in range(3)])
    assert [e.seq for e in first + second] == list(range(1, 9))
    with Session(engine) as s:
        rows = list(store.iter_range(s))
        head = store.head(s)
    assert [r.seq for r in rows] == list(range(1, 9))
    prev = GENESIS
    for r in rows:
        assert r.leaf_hash == leaf_hash(r.body.encode(), store.hash)
        assert r.prev_hash == prev and r.hash == chain_hash(prev, r.leaf_hash, store.hash)
        prev = r.hash
    assert head.seq == 8 and head.hash == prev
    assert head.root(store.hash) == tree_root([r.leaf_hash for r in rows], h=store.hash)
    with Session(engine) as s:
        got = store.get(s, 3)
    assert got == first[2]


def test_iter_range_bounds(engine: sa.Engine, store: AuditStore,
                           filled: Callable[[int], None]) -> None:
    filled(30)
    with Session(engine) as s:
        assert [r.seq for r in store.iter_range(s, 5, 12, chunk=3)] == list(range(5, 13))
        assert store.count(s) == 30 and store.max_seq(s) == 30


def test_rollback_leaves_no_trace(engine: sa.Engine, store: AuditStore,
                                  make_event: Callable[..., AuditEvent]) -> None:
    with pytest.raises(RuntimeError), Session(engine) as s, s.begin():
        store.append(s, [make_event() for _ in range(4)])
        raise RuntimeError("request failed")
    with Session(engine) as s:
        assert store.head(s).seq == 0 and store.count(s) == 0


def test_concurrent_appenders_keep_the_chain(engine: sa.Engine, store: AuditStore,
                                             make_event: Callable[..., AuditEvent]) -> None:
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _busy(dbapi_conn: object, _rec: object) -> None:
            dbapi_conn.execute("PRAGMA busy_timeout = 30000")  # type: ignore[attr-defined]
        engine.dispose()

    def work() -> None:
        for _ in range(5):
            with Session(engine) as s, s.begin():
                store.append(s, [make_event() for _ in range(20)])

    assert not errors_on_threads(work)
    with Session(engine) as s:
        rows = list(store.iter_range(s))
    assert [r.seq for r in rows] == list(range(1, 401))
    prev = GENESIS
    for r in rows:
        assert r.prev_hash == prev
        prev = r.hash


def test_store_has_no_update_or_delete_of_events() -> None:
    forbidden = ("update", "delete", "remove", "purge", "modify", "replace", "truncate", "set")
    names = [n for n, _ in inspect.getmembers(AuditStore, callable) if not n.startswith("__")]
    assert not [n for n in names if any(f in n.lower() for f in forbidden)]
    # and the module never builds an UPDATE or DELETE of the events table
    tree = ast.parse(inspect.getsource(store_mod))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("update", "delete") and node.args:
                assert not (isinstance(node.args[0], ast.Name) and node.args[0].id == "EVENTS")
            if node.func.attr in ("update", "delete") and isinstance(node.func.value, ast.Name):
                assert node.func.value.id != "EVENTS"
            if isinstance(node.func, ast.Attribute):
                assert node.func.attr != "delete", "the store module must not delete"
    assert "DELETE FROM" not in inspect.getsource(store_mod).upper()


def test_indexes_exist() -> None:
    names = {ix.name for ix in EVENTS.indexes}
    for col in ("actor", "action", "effect", "org", "role", "dataset", "grade"):
        assert f"ix_audit_events_{col}_ts" in names


@pytest.mark.parametrize("name", ["", None, "张三的账号"])
def test_the_actor_name_column_says_what_the_hashed_body_says(
        engine: sa.Engine, trail: Trail, make_event: Callable[..., AuditEvent],
        name: str | None) -> None:
    # An empty display name (a reporter's ``"name": ""``) is left out of the body like no
    # name; its column must say the same, or verification takes the row for altered.
    with Session(engine) as s, s.begin():
        trail.store.append(s, [make_event(actor=Actor("u", "r", "o", name))])
    with Session(engine) as s:
        (row,) = list(trail.store.iter_range(s))
        assert row.columns["actor_name"] == (name or None)
        trail.verify(s)
