"""Console sessions and the failed-authentication limit across worker processes.

Two app instances over one database stand for two workers of ``serve --workers N``
(each has its own container, as each worker process does): a session made on one holds
on the other, signing out on one ends it on both, expiry and key revocation hold
everywhere, the database keeps only the session id's hash, and failed authentications
seen by either worker add up to one limit. The same with two real server processes on
PostgreSQL is in tests/quanguard/test_serve_workers.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from quanguard.api.app import create_app
from quanguard.auth import create_key, key_fingerprint, revoke_key
from quanguard.container import Container, build_container
from quanguard.shared_state import AUTH_FAILURES, CONSOLE_SESSIONS
from tests.conftest import make_settings


def _token(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def _sign_in(client: TestClient, key: str) -> Any:
    token = _token(client.get("/console/login").text)
    return client.post("/console/login", data={"key": key, "csrf": token},
                       follow_redirects=False)


def _as(sid: str) -> dict[str, str]:
    return {"Cookie": f"qg_console={sid}"}


class Workers:
    """Two containers (and apps) over one store, like two worker processes."""

    def __init__(self, url: str, schema: str | None, tmp: Path, **settings: Any) -> None:
        self.containers = [build_container(make_settings(tmp, db_url=url, **settings),
                                           schema=schema) for _ in range(2)]
        self.clients = [TestClient(create_app(c)) for c in self.containers]
        for c in self.clients:
            c.__enter__()

    def key(self, role: str, name: str) -> str:
        with self.containers[0].session() as s, s.begin():
            return create_key(s, role=role, org="市大数据局", name=name).key

    def rows(self, table: sa.Table) -> list[Any]:
        with self.containers[1].read_session() as s:
            return list(s.execute(sa.select(table)))

    def close(self) -> None:
        for c in self.clients:
            c.__exit__(None, None, None)
        for container in self.containers:
            container.close()


@pytest.fixture
def workers(db_backend: tuple[str, str | None], tmp_path: Path) -> Iterator[Workers]:
    url, schema = db_backend
    w = Workers(url, schema, tmp_path, auth_fail_limit=6)
    try:
        yield w
    finally:
        w.close()


def _session_on(workers: Workers, role: str = "auditor") -> tuple[str, str]:
    key = workers.key(role, f"{role}-1")
    resp = _sign_in(workers.clients[0], key)
    assert resp.status_code == 303, resp.text[:300]
    return key, resp.cookies["qg_console"]


def test_a_session_made_on_one_worker_holds_on_the_other_until_sign_out(workers: Workers) -> None:
    a, b = workers.clients
    _, sid = _session_on(workers)
    page = b.get("/console/search", headers=_as(sid), follow_redirects=False)
    assert page.status_code == 200 and "auditor-1" in page.text
    csrf = _token(page.text)
    # A forged sign-out on worker B ends nothing; the real one ends it on both workers.
    b.post("/console/logout", data={"csrf": "forged"}, headers=_as(sid), follow_redirects=False)
    assert a.get("/console/search", headers=_as(sid), follow_redirects=False).status_code == 200
    out = b.post("/console/logout", data={"csrf": csrf}, headers=_as(sid), follow_redirects=False)
    assert out.status_code == 303
    for client in (a, b):
        resp = client.get("/console/search", headers=_as(sid), follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"] == "/console/login"
    assert workers.rows(CONSOLE_SESSIONS) == []


def test_the_csrf_token_of_a_session_is_the_same_on_every_worker(workers: Workers) -> None:
    a, b = workers.clients
    _, sid = _session_on(workers)
    token = _token(a.get("/console/search", headers=_as(sid)).text)
    assert _token(b.get("/console/search", headers=_as(sid)).text) == token
    # A form posted to the other worker with that token passes the token check and
    # reaches the use case, which answers that there is no such alert (400, not 403).
    resp = b.post("/console/alerts/nope", data={"csrf": token, "status": "closed"},
                  headers=_as(sid), follow_redirects=False)
    assert resp.status_code == 400, resp.text[:300]
    resp = b.post("/console/alerts/nope", data={"csrf": "x" + token, "status": "closed"},
                  headers=_as(sid), follow_redirects=False)
    assert resp.status_code == 403


def test_the_database_keeps_only_the_hash_of_the_session_id(workers: Workers) -> None:
    key, sid = _session_on(workers)
    rows = workers.rows(CONSOLE_SESSIONS)
    assert len(rows) == 1
    stored = json.dumps([[str(v) for v in r] for r in rows])
    assert sid not in stored and key not in stored
    assert rows[0].id_hash == hashlib.sha256(sid.encode()).hexdigest()
    # Someone holding a copy of the table cannot use a row's hash as a cookie.
    resp = workers.clients[1].get("/console/search", headers=_as(rows[0].id_hash),
                                  follow_redirects=False)
    assert resp.status_code == 303


@pytest.mark.parametrize("column,age_s", [("seen", 31 * 60), ("created", 8 * 3600 + 5)])
def test_idle_and_old_sessions_expire_on_every_worker(workers: Workers, column: str,
                                                      age_s: int) -> None:
    _, sid = _session_on(workers)
    with workers.containers[0].session() as s, s.begin():
        s.execute(CONSOLE_SESSIONS.update().values(
            {column: getattr(CONSOLE_SESSIONS.c, column) - age_s * 1000}))
    resp = workers.clients[1].get("/console/search", headers=_as(sid), follow_redirects=False)
    assert resp.status_code == 303
    assert workers.rows(CONSOLE_SESSIONS) == []  # an expired session is removed


def test_revoking_the_key_ends_its_sessions_on_every_worker(workers: Workers) -> None:
    _, sid = _session_on(workers)
    with workers.containers[0].session() as s, s.begin():
        revoke_key(s, "auditor-1")
    resp = workers.clients[1].get("/console/search", headers=_as(sid), follow_redirects=False)
    assert resp.status_code == 303
    assert workers.rows(CONSOLE_SESSIONS) == []


def test_a_refused_console_sign_in_records_the_keys_fingerprint(workers: Workers) -> None:
    bad = "qg_deadbeef_" + "z" * 43
    resp = _sign_in(workers.clients[1], bad)
    assert resp.status_code == 401
    with workers.containers[0].read_session() as s:
        bodies = [json.loads(b) for (b,) in s.execute(sa.text(
            "SELECT body FROM audit_events WHERE action = 'login'"))]
    assert len(bodies) == 1
    assert bodies[0]["user"]["id"] == "anonymous"
    assert bodies[0]["labels"]["key_fingerprint"] == key_fingerprint(bad)
    assert bad not in json.dumps(bodies, ensure_ascii=False)


def test_failed_authentications_on_two_workers_add_up_to_one_limit(workers: Workers) -> None:
    """An attacker spreading guesses over the workers gets the limit once, not per worker."""
    a, b = workers.clients
    codes = []
    for i in range(6):
        client = (a, b)[i % 2]
        codes.append(client.get("/v1/whoami", headers={
            "Authorization": f"Bearer qg_{i:08d}_{'z' * 43}"}).status_code)
    assert codes == [401] * 6
    for client in (a, b):
        resp = client.get("/v1/whoami", headers={"Authorization": "Bearer qg_1_2"})
        assert resp.status_code == 429 and resp.json()["error"]["kind"] == "rate_limited"
    # The console's sign-in form shares the counter on either worker.
    assert _sign_in(b, "qg_x_y").status_code == 429
    assert sum(r.count for r in workers.rows(AUTH_FAILURES)) == 6


def test_a_successful_authentication_writes_nothing(workers: Workers) -> None:
    key = workers.key("auditor", "reader")
    statements: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = workers.containers[1].engine
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        resp = workers.clients[1].get("/v1/whoami", headers={"Authorization": f"Bearer {key}"})
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    assert resp.status_code == 200
    touching = [s for s in statements if "auth_failures" in s or "principals" in s]
    assert touching and all(s.lstrip().upper().startswith("SELECT") for s in touching), touching
    assert workers.rows(AUTH_FAILURES) == []


def test_failures_leave_the_window_after_a_minute(container: Container) -> None:
    from quanguard.errors import RateLimited
    from quanguard.ratelimit import FailureLimiter

    now = [1_000_000.0]
    limiter = FailureLimiter(container, clock=lambda: now[0])
    container.settings.__dict__["auth_fail_limit"] = 3
    for _ in range(3):
        limiter.fail("10.0.0.9")
    with pytest.raises(RateLimited):
        limiter.check("10.0.0.9")
    limiter.check("10.0.0.10")  # another address is not limited
    now[0] += 59
    with pytest.raises(RateLimited):
        limiter.check("10.0.0.9")
    now[0] += 12  # more than 70 s after the failures: every bucket of them has left
    limiter.check("10.0.0.9")
    limiter.fail("10.0.0.9")  # and the next failure sweeps the expired buckets away
    with container.read_session() as s:
        assert [tuple(r) for r in s.execute(sa.select(AUTH_FAILURES))] == [
            ("10.0.0.9", int(now[0]) // 10, 1)]
