"""The console's session store against cookies nobody here wrote, a key whose row is gone,
and the last-seen write it keeps off the hot path."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from quanguard.auth import Principal
from quanguard.console.sessions import IDLE_SECONDS, TOUCH_SECONDS, SessionStore
from quanguard.container import Container
from quanguard.models import PrincipalRow
from quanguard.shared_state import CONSOLE_SESSIONS

MakeKey = Callable[..., tuple[str, Principal]]


def _rows(container: Container) -> list[sa.Row[tuple[str, str, int]]]:
    with container.read_session() as s:
        return list(s.execute(sa.select(CONSOLE_SESSIONS.c.id_hash, CONSOLE_SESSIONS.c.principal_id,
                                        CONSOLE_SESSIONS.c.seen)))


@pytest.mark.parametrize("cookie", [
    None, "", "x", "a" * 201, "a" * 10_000, "' OR 1=1 --", "%00%0a", "\x00\n\u202e",
    "会话", "\udcff",
])
def test_a_cookie_nobody_issued_finds_no_session(container: Container, make_key: MakeKey,
                                                 cookie: str | None) -> None:
    _, me = make_key("auditor")
    store = SessionStore(container)
    store.create(me)
    assert store.get(cookie) is None
    assert len(_rows(container)) == 1  # and it removes nobody's session


def test_the_stored_hash_is_no_cookie_and_a_near_miss_is_none(container: Container,
                                                                make_key: MakeKey) -> None:
    _, me = make_key("auditor")
    store = SessionStore(container)
    sid, _ = store.create(me)
    (row,) = _rows(container)
    assert store.get(row.id_hash) is None
    assert store.get(sid[:-1]) is None and store.get(sid + " ") is None
    assert store.get(sid.upper() if sid.upper() != sid else sid.lower()) is None
    current = store.get(sid)
    assert current is not None and current.principal.id == me.id


def test_a_session_whose_key_row_is_gone_ends(container: Container, make_key: MakeKey) -> None:
    _, me = make_key("manager")
    store = SessionStore(container)
    sid, _ = store.create(me)
    with container.unit_of_work() as s:
        s.execute(sa.delete(PrincipalRow).where(PrincipalRow.id == me.id))
    assert store.get(sid) is None
    assert _rows(container) == []


def test_last_seen_is_written_at_most_once_a_minute(container: Container, make_key: MakeKey) -> None:
    _, me = make_key("admin")
    now = [2_000_000_000.0]
    store = SessionStore(container, clock=lambda: now[0])
    sid, _ = store.create(me)
    first = _rows(container)[0].seen
    now[0] += TOUCH_SECONDS - 1
    assert store.get(sid) is not None
    assert _rows(container)[0].seen == first  # a read, no write
    now[0] += 2
    assert store.get(sid) is not None
    assert _rows(container)[0].seen == int(now[0] * 1000)
    now[0] += IDLE_SECONDS + 1
    assert store.get(sid) is None and _rows(container) == []


@pytest.mark.parametrize("raw", [b"qg_console=\xff\xfe", b"qg_console=\"\\377\\000\"",
                                 b"qg_console=" + b"z" * 4000, b"qg_console=a; qg_console=b"])
def test_a_hostile_cookie_header_is_sent_to_sign_in(client: TestClient, raw: bytes) -> None:
    resp = client.get("/console/search", headers=[(b"cookie", raw)], follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/console/login"
