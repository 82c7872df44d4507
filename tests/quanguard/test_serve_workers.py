"""`quanguard serve --workers N`: several processes append to one PostgreSQL trail.

Four workers take concurrent single-event and batch POSTs; afterwards `audit verify`
passes and every accepted event is in the trail exactly once (no loss, no duplicate,
seqs gap-free). On SQLite more than one worker is refused with a reason.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
def pg_database(pg_ok: bool):
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
def test_four_workers_append_to_one_trail_without_loss_or_duplicates(pg_database, tmp_path):
    env = _env(tmp_path, pg_database)
    made = _cli(env, tmp_path, "keys", "create", "--role", "reporter", "--org", "市局", "--name", "w")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "quanguard.cli.main", "serve", "--port",
                               str(port), "--workers", "4"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    marker = uuid.uuid4().hex
    sent: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
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
        server.terminate()
        try:
            _out, err = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            _out, err = server.communicate()
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


def test_several_workers_on_sqlite_are_refused(tmp_path):
    env = _env(tmp_path, f"sqlite:///{tmp_path / 'q.db'}")
    r = _cli(env, tmp_path, "serve", "--port", str(_free_port()), "--workers", "3")
    assert r.returncode != 0 and "needs PostgreSQL" in r.stderr
