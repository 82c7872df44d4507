"""`quanguard serve --workers N`: several processes append to one PostgreSQL trail.

Four workers take concurrent single-event and batch POSTs; afterwards `audit verify`
passes and every accepted event is in the trail exactly once (no loss, no duplicate,
seqs gap-free). On SQLite more than one worker is refused with a reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.serving import free_port, stop, wait_ready

REPO = Path(__file__).resolve().parents[2]
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _env(tmp: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANGUARD_")}
    env.update({"QUANGUARD_POLICY_DIR": str(REPO / "policies"), "QUANGUARD_DB_URL": db_url,
                "QUANGUARD_KEY_DIR": str(tmp / "keys"), "QUANGUARD_DATA_DIR": str(tmp),
                "QUANGUARD_AUTH_FAIL_LIMIT": "1000", "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""})
    return env


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "quanguard.cli.main", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600, check=False)


def _line(marker: str, i: int) -> str:
    return json.dumps({"ts": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
                       "actor": {"id": f"u{i % 7}", "role": "consumer", "org": "市局"},
                       "action": "query", "dataset": "d", "grade": "L2", "rows": i,
                       "decision": "allow", "labels": {"marker": marker, "n": str(i)}})


@pytest.fixture
def pg_database(pg_ok: bool) -> Iterator[str]:
    if not pg_ok:
        pytest.skip("PostgreSQL is not running")
    name = f"qg_workers_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{PG}/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG}/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.slow
@pytest.mark.pg
def test_four_workers_append_to_one_trail_without_loss_or_duplicates(pg_database: str, tmp_path: Path) -> None:
    env = _env(tmp_path, pg_database)
    made = _cli(env, tmp_path, "keys", "create", "--role", "reporter", "--org", "市局", "--name", "w")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "quanguard.cli.main", "serve", "--port",
                               str(port), "--workers", "4"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    marker = uuid.uuid4().hex
    sent: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    try:
        _ready(server, base)
        headers = {"Authorization": f"Bearer {key}"}

        def client(c_id: int) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
                for j in range(15):
                    i = c_id * 1000 + j
                    r = c.post("/v1/events", content=_line(marker, i))
                    with lock:
                        (sent.append(i) if r.status_code == 201 else errors.append(r.text[:200]))
                lines = [_line(marker, c_id * 1000 + 100 + j) for j in range(40)]
                r = c.post("/v1/events/batch", content="\n".join(lines))
                with lock:
                    if r.status_code == 200 and r.json()["accepted"] == 40:
                        sent.extend(c_id * 1000 + 100 + j for j in range(40))
                    else:
                        errors.append(r.text[:200])

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        _out, err = stop(server, timeout=60)
    assert not errors, errors[:3]
    assert "workers: 4" in err
    assert len(sent) == 8 * 55
    verified = _cli(env, tmp_path, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    engine = sa.create_engine(pg_database)
    with engine.connect() as c:
        seqs = [r[0] for r in c.execute(sa.text("SELECT seq FROM audit_events ORDER BY seq"))]
        bodies = [json.loads(r[0]) for r in c.execute(sa.text("SELECT body FROM audit_events"))]
    engine.dispose()
    assert seqs == list(range(1, len(seqs) + 1))  # gap-free, one chain
    mine = [int(b["labels"]["n"]) for b in bodies if b.get("labels", {}).get("marker") == marker]
    assert sorted(mine) == sorted(sent)  # every accepted event once: no loss, no duplicate


def test_several_workers_on_sqlite_are_refused(tmp_path: Path) -> None:
    env = _env(tmp_path, f"sqlite:///{tmp_path / 'q.db'}")
    r = _cli(env, tmp_path, "serve", "--port", str(free_port()), "--workers", "3")
    assert r.returncode != 0 and "needs PostgreSQL" in r.stderr


def test_default_is_one_worker_per_core_on_postgresql_and_one_on_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    from quanguard import workers

    monkeypatch.setattr(workers, "cores", lambda: 6)
    n, why = workers.default_workers("postgresql+psycopg://u@h/db")
    assert n == 6 and "one worker per core" in why and "shared through the database" in why
    n, why = workers.default_workers("sqlite:///var/quanguard.db")
    assert n == 1 and "one writer at a time" in why


def _serve(env: dict[str, str], cwd: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "quanguard.cli.main", "serve", "--port",
                             str(port), *extra], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _ready(server: subprocess.Popen[str], base: str) -> None:
    assert wait_ready(server, base, timeout=300, interval=0.5,
                      logs=lambda: server.stderr.read() if server.stderr else ""), "server did not become ready"


def _csrf(html: str) -> str:
    import re

    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:300]
    return match.group(1)


@pytest.mark.slow
@pytest.mark.pg
def test_two_servers_share_console_sessions_auth_limits_and_policy_reloads(pg_database: str, tmp_path: Path) -> None:
    """Server A (the default worker count: one per core) and server B (one worker) over one
    PostgreSQL store: a console session made on A works on B and ends on both when signed
    out on B; a policy reload on A brings every worker of both to the same version, each
    recorded; failed keys spread over both servers trip one limit."""
    import shutil

    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    env = {**_env(tmp_path, pg_database), "QUANGUARD_AUTH_FAIL_LIMIT": "6",
           "QUANGUARD_POLICY_DIR": str(policies)}
    keys = {}
    for role in ("auditor", "officer"):
        made = _cli(env, tmp_path, "keys", "create", "--role", role, "--org", "市局", "--name", role)
        assert made.returncode == 0, made.stderr
        keys[role] = made.stdout.strip()
    pa, pb = free_port(), free_port()
    a_url, b_url = f"http://127.0.0.1:{pa}", f"http://127.0.0.1:{pb}"
    server_a = _serve(env, tmp_path, pa)
    server_b = _serve(env, tmp_path, pb, "--workers", "1")
    errs = ["", ""]
    try:
        _ready(server_a, a_url)
        _ready(server_b, b_url)
        # -- console: sign in on A, use on B, sign out on B, refused on A ------------------
        with httpx.Client(base_url=a_url, timeout=120) as a, \
                httpx.Client(base_url=b_url, timeout=120) as b:
            token = _csrf(a.get("/console/login").text)
            r = a.post("/console/login", data={"key": keys["auditor"], "csrf": token})
            assert r.status_code == 303, r.text[:300]
            sid = r.cookies["qg_console"]
            cookie = {"Cookie": f"qg_console={sid}"}
            # a new connection per request, so that A's workers take turns answering (a
            # kept-alive connection would stay with one of them)
            fresh = {"Connection": "close"}
            page = b.get("/console/search", headers=cookie)
            assert page.status_code == 200 and "auditor" in page.text
            for _ in range(4):  # whichever of A's workers answers
                assert a.get("/console/search", headers=cookie | fresh).status_code == 200
            out = b.post("/console/logout", data={"csrf": _csrf(page.text)}, headers=cookie)
            assert out.status_code == 303
            for client in (a, a, a, a, b):
                r = client.get("/console/search", headers=cookie | fresh)
                assert r.status_code == 303 and r.headers["location"] == "/console/login"
            # -- policy: an edit no file probe can see, reloaded on A ----------------------
            path = policies / "alerts.yaml"
            st = path.stat()
            text = path.read_text(encoding="utf-8")
            path.write_text(text.replace("# 监测预警规则", "# 监测告警规则", 1), encoding="utf-8")
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
            officer = {"Authorization": f"Bearer {keys['officer']}"}
            before = b.get("/v1/policy", headers=officer).json()["version"]
            reloaded = a.post("/v1/policy/reload", headers=officer)
            assert reloaded.status_code == 200, reloaded.text
            version = reloaded.json()["version"]
            assert version != before
            deadline = time.monotonic() + 20
            seen: list[str] = []
            while time.monotonic() < deadline:
                seen = [c.get("/v1/policy", headers=officer | fresh).json()["version"]
                        for c in (a, a, a, a, b, b)]
                if set(seen) == {version}:
                    break
                time.sleep(0.2)
            assert set(seen) == {version}, seen
            # -- failed keys spread over both servers: one limit --------------------------
            codes = [(a, b)[i % 2].get("/v1/whoami", headers={
                "Authorization": f"Bearer qg_{i:08d}_{'z' * 43}"}).status_code for i in range(6)]
            assert codes == [401] * 6
            for client in (a, b):
                assert client.get("/v1/whoami", headers=officer).status_code == 429
    finally:
        errs = [stop(server_a, timeout=60)[1], stop(server_b, timeout=60)[1]]
    cores = len(os.sched_getaffinity(0))
    assert f"workers: {cores} (PostgreSQL: one worker per core" in errs[0], errs[0][-2000:]
    assert "workers: 1 (--workers)" in errs[1]
    engine = sa.create_engine(pg_database)
    with engine.connect() as c:
        reloads = [json.loads(r[0]) for r in c.execute(sa.text(
            "SELECT body FROM audit_events WHERE action = 'policy_reload' ORDER BY seq"))]
    engine.dispose()
    manual = [e for e in reloads if e["labels"]["trigger"] == "manual"]
    peers = [e for e in reloads if e["labels"]["trigger"] == "peer"]
    assert len(manual) == 1 and manual[0]["labels"]["version"] == version
    # every other worker process followed, once each, and said so in the trail
    assert len(peers) == cores + 1 - 1, reloads
    assert len({e["labels"]["process"] for e in peers}) == len(peers)
    assert all(e["labels"]["version"] == version for e in peers)
    verified = _cli(env, tmp_path, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_serving_process_freezes_what_it_loaded_and_collects_less_often() -> None:
    # in a process of its own: the collector's settings are the whole process's
    code = ("import gc, json\n"
            "from quanguard.workers import SERVE_GC_THRESHOLD, serving_collector\n"
            "kept = [[i] for i in range(1000)]\n"
            "before = gc.get_freeze_count()\n"
            "serving_collector()\n"
            "print(json.dumps([before, gc.get_freeze_count(), list(gc.get_threshold()),\n"
            "                  list(SERVE_GC_THRESHOLD), gc.isenabled()]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
                         timeout=120)
    before, after, threshold, wanted, enabled = json.loads(out.stdout)
    assert before == 0 and after > 1000  # the objects loaded so far, the list above included
    assert threshold == wanted and wanted[0] > 700  # young collections less often than default
    assert enabled  # tuned, never switched off: cycles are still collected
