"""Policy reloads reach every worker process (PostgreSQL LISTEN/NOTIFY).

Two containers over one PostgreSQL schema stand for two worker processes reading one
policy directory. An edit that keeps each file's size and modification time is invisible
to the per-process file probe, so only a reload shows it: a reload on one worker must
bring the other to the same version, recorded in the trail, also when the other was not
listening at the time (it catches up when it reconnects).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from quanguard.auth import create_key
from quanguard.container import Container, build_container
from quanguard.policy_sync import start_listening, stop_listening
from quanguard.usecases import policy as uc
from tests.conftest import PG_URL, POLICY_DIR, PgSchema, make_settings


def _edit_unseen(path: Path, old: str, new: str) -> None:
    """Change ``old`` to ``new`` (same length in bytes) keeping size and mtime."""
    st = path.stat()
    text = path.read_text(encoding="utf-8")
    assert old in text and len(old.encode()) == len(new.encode())
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size


def _wait(pred: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return bool(pred())


@pytest.fixture
def pair(pg_ok: bool, tmp_path: Path) -> Iterator[tuple[Container, Container, Path]]:
    if not pg_ok:
        pytest.skip("PostgreSQL not reachable")
    policies = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policies)
    schema = PgSchema()
    made = [build_container(make_settings(tmp_path, db_url=PG_URL, policy_dir=policies),
                            schema=schema.name) for _ in range(2)]
    try:
        for c in made:
            start_listening(c)
        for c in made:
            assert c._policy_sync is not None
            assert c._policy_sync.connected.wait(10)
        yield made[0], made[1], policies
    finally:
        for c in made:
            c.close()
        schema.drop()


def _officer(c: Container) -> Any:
    with c.session() as s, s.begin():
        return create_key(s, role="officer", org="市大数据局", name="officer-1").principal


def _reload_events(c: Container) -> list[dict[str, Any]]:
    with c.read_session() as s:
        return [json.loads(b) for (b,) in s.execute(sa.text(
            "SELECT body FROM audit_events WHERE action = 'policy_reload' ORDER BY seq"))]


def test_a_reload_on_one_worker_brings_the_other_to_the_same_version(pair: Any) -> None:
    a, b, policies = pair
    before = a.policy.version
    assert b.policy.version == before
    _edit_unseen(policies / "alerts.yaml", "# 监测预警规则", "# 监测告警规则")
    out = uc.reload(a, _officer(a))
    assert out["ok"] and out["version"] != before
    assert _wait(lambda: b.policy.version == out["version"]), "the other worker did not follow"
    assert _wait(lambda: len(_reload_events(a)) == 2)
    events = _reload_events(a)
    triggers = sorted(e["labels"]["trigger"] for e in events)
    assert triggers == ["manual", "peer"]
    peer = next(e for e in events if e["labels"]["trigger"] == "peer")
    assert peer["labels"]["version"] == out["version"]
    assert peer["labels"]["previous_version"] == before
    assert peer["user"]["id"] == "quanguard"
    assert peer["labels"]["process"] == b._policy_sync.instance  # which worker followed


def test_a_worker_that_was_not_listening_catches_up(pair: Any) -> None:
    a, b, policies = pair
    stop_listening(b)
    _edit_unseen(policies / "alerts.yaml", "# 监测预警规则", "# 监测报警规则")
    out = uc.reload(a, _officer(a))
    time.sleep(0.5)
    assert b.policy.version != out["version"]  # nothing told it yet
    start_listening(b)
    assert _wait(lambda: b.policy.version == out["version"])


def test_sqlite_keeps_one_process_following_its_files(container: Container) -> None:
    container.policy  # noqa: B018
    assert getattr(container, "_policy_sync", None) is None
    start_listening(container)  # a no-op on SQLite
    assert getattr(container, "_policy_sync", None) is None
