"""The container's units of work on a SQLite file take turns on one writer connection
(issue 15): the same transactions, the same rows, the same errors as when each took a
pooled connection of its own — only faster.

Most tests here hold on the code before the writer connection too (they state what must
not change); the ones naming the writer connection pin what it is.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import quanguard.container as qc
from quanguard.auth import Principal
from quanguard.container import Container, build_container
from quanguard.usecases import audit as uc
from tests.conftest import auth, errors_on_threads_each, make_settings, write_held_elsewhere

REPORTER = Principal(id="p-rep", name="rep", role="reporter", org="市卫健委")
AUDITOR = Principal(id="p-audit", name="audit", role="auditor", org="市审计局")


def _lines(n: int, *, start: int = 0, purpose: str = "核验") -> list[str]:
    base = datetime.now(UTC) - timedelta(hours=3)
    return [json.dumps({
        "ts": (base + timedelta(seconds=start + i)).isoformat(),
        "actor": {"id": f"user-{(start + i) % 7}", "role": "consumer", "org": "市卫健委"},
        "action": "query", "dataset": "户籍人口", "rows": 1 + i,
        "purpose": f"{purpose} {start + i}", "source_ip": f"10.0.{i % 256}.9",
    }, ensure_ascii=False) for i in range(n)]


def _count(container: Container) -> int:
    with container.read_session() as session:
        return int(container.audit.store.count(session))


def _dbapi(session: Any) -> Any:
    return session.connection().connection.dbapi_connection


def test_units_of_work_reuse_one_writer_connection_with_a_large_cache(container: Container) -> None:
    seen = []
    for _ in range(3):
        with container.unit_of_work() as session:
            conn = _dbapi(session)
            seen.append(id(conn))
            (size,) = conn.execute("PRAGMA cache_size").fetchone()
    assert len(set(seen)) == 1
    assert size == -qc.WRITE_CACHE_KIB
    # readers keep their own pool (and never wait behind a writer in WAL mode)
    with container.read_session() as session:
        assert id(_dbapi(session)) not in seen


def test_other_stores_get_no_writer_connection(tmp_path: Path) -> None:
    c = build_container(make_settings(tmp_path, db_url="sqlite://"))
    try:
        assert c._writer is None and c._write_turn is None
        with c.unit_of_work() as session:
            assert session.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        c.close()


def test_concurrent_batches_all_land_on_one_chain(container: Container) -> None:
    def work(i: int) -> None:
        result = uc.ingest(container, REPORTER, _lines(150, start=1000 * i), max_lines=10_000)
        assert result.accepted == 150 and not result.errors

    assert not errors_on_threads_each(range(8), work, threads=4)
    assert _count(container) == 8 * 150
    uc.verify(container, AUDITOR)


def test_a_second_writer_on_the_same_file_is_seen(tmp_path: Path) -> None:
    # Another process (a CLI ingest beside the server) commits between two of ours: the
    # writer connection's cache must not hide its rows (SQLite drops a stale cache).
    settings = make_settings(tmp_path)
    a, b = build_container(settings), build_container(settings)
    try:
        for i, c in enumerate((a, b, a, b, a)):
            uc.ingest(c, REPORTER, _lines(40, start=100 * i), max_lines=10_000)
        assert _count(a) == _count(b) == 200
        uc.verify(b, AUDITOR)
        uc.verify(a, AUDITOR)
    finally:
        a.close()
        b.close()


def test_a_failed_unit_of_work_rolls_back_and_frees_the_turn(container: Container) -> None:
    with pytest.raises(RuntimeError), container.unit_of_work() as session:
        container.audit.record(session, actor=REPORTER, action="query")
        raise RuntimeError("the access failed")
    assert _count(container) == 0
    done: list[int] = []
    t = threading.Thread(target=lambda: done.append(
        uc.ingest(container, REPORTER, _lines(3), max_lines=10).accepted))
    t.start()
    t.join(timeout=10)
    assert done == [3]


def test_a_unit_of_work_inside_another_one_still_works(container: Container) -> None:
    # the outer one has not touched the store yet: as before, the inner one commits alone
    with container.unit_of_work() as outer:
        with container.unit_of_work() as inner:
            container.audit.record(inner, actor=REPORTER, action="query")
        container.audit.record(outer, actor=REPORTER, action="query")
    assert _count(container) == 2


def test_a_unit_of_work_that_cannot_get_its_turn_goes_ahead(
        container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    # A turn held too long (a stuck thread) never blocks writes for good: past the wait the
    # unit goes ahead on a connection of its own, with SQLite's own locking as before.
    monkeypatch.setattr(qc, "WRITE_TURN_WAIT_S", 0.2, raising=False)
    with write_held_elsewhere(container):
        started = time.monotonic()
        assert uc.ingest(container, REPORTER, _lines(2), max_lines=10).accepted == 2
        assert time.monotonic() - started < 8
    assert _count(container) == 2


def test_concurrent_batch_posts_keep_every_event_and_the_answers(
        client: TestClient, make_key: Callable[..., tuple[str, Principal]], container: Container) -> None:
    key = make_key("reporter")[0]
    answers: list[tuple[int, int, list[int]]] = []

    def work(i: int) -> None:
        lines = _lines(120, start=1000 * i, purpose="回访 中文 ünï \U0001f600 x")
        if i % 2:
            lines[7] = "{bad"
            lines[50] = '{"ts": "2026-11-29T00:00:00Z", "purpose": "lone \\ud800"}'
        r = client.post("/v1/events/batch", content="\n".join(lines), headers=auth(key))
        doc = r.json()
        answers.append((r.status_code, doc["accepted"], [e["line"] for e in doc["errors"]]))

    assert not errors_on_threads_each(range(6), work, threads=4)
    assert sorted(answers) == [(200, 120, [])] * 3 + [(207, 118, [8, 51])] * 3
    with container.read_session() as session:
        rows = session.execute(sa.text(
            "SELECT action, count(*) FROM audit_events GROUP BY action")).all()
    counts: dict[str, int] = {str(action): int(n) for action, n in rows}
    assert counts["query"] == 6 * 120 - 3 * 2
    assert counts["report_events"] == 6  # one event for each request, in its transaction
    uc.verify(container, AUDITOR)


def _rows_in_the_database_file(container: Container, tmp_path: Path) -> int:
    """Events in the database file itself, without its WAL (what a checkpoint copied)."""
    import shutil
    import sqlite3

    db = Path(str(container.engine.url.database))
    copy = tmp_path / "file-only.db"
    shutil.copyfile(db, copy)
    with sqlite3.connect(copy) as conn:
        return int(conn.execute("SELECT count(*) FROM audit_events").fetchone()[0])


def test_a_large_batch_is_in_the_database_file_when_it_is_answered(
        container: Container, tmp_path: Path) -> None:
    # The checkpoint moved out of the writers' turn runs before the call returns, once
    # WAL_CHECKPOINT_ROWS rows are written (SQLite's own waits for 1,000 WAL pages, which a
    # batch into a small store does not reach: there the file held only the WAL's rows).
    result = uc.ingest(container, REPORTER, _lines(1000), max_lines=10_000)
    assert result.accepted == 1000
    assert _rows_in_the_database_file(container, tmp_path) == 1000


def test_writes_outside_units_of_work_are_checkpointed_too(
        container: Container, tmp_path: Path) -> None:
    with container.session() as session, session.begin():
        for _ in range(400):
            container.audit.record(session, actor=REPORTER, action="query")
    assert _rows_in_the_database_file(container, tmp_path) == 400


def test_the_writer_keeps_sqlite_checkpoints_as_a_backstop(container: Container) -> None:
    with container.unit_of_work() as session:
        (pages,) = _dbapi(session).execute("PRAGMA wal_autocheckpoint").fetchone()
    assert 0 < pages <= qc.WAL_BACKSTOP_PAGES
