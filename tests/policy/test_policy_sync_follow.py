"""What a worker does with another worker's policy announcement when it is not the happy
path: a garbled payload, its own echo, a version it already has, and a peer's version
while this worker's own files do not validate (it keeps the policy it has, says so in the
trail, and goes on deciding). The announcement handling runs on any database; the
PostgreSQL transport is in tests/policy/test_policy_sync.py."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from quanguard.auth import Principal
from quanguard.container import Container, build_container
from quanguard.policy.model import Resource
from quanguard.policy_sync import PolicySync
from tests.conftest import POLICY_DIR, make_settings

AUDITOR = Principal(id="p-auditor", name="auditor-1", role="auditor", org="市大数据局")


@pytest.fixture
def own(tmp_path: Path) -> Iterator[tuple[Container, PolicySync, Path]]:
    """A service over a copy of the shipped policies, with the announcement handler of a
    worker (not listening: its handler is called directly)."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policies, ignore=shutil.ignore_patterns("__pycache__"))
    c = build_container(make_settings(tmp_path, policy_dir=policies))
    sync = PolicySync(c, c.policy)
    try:
        yield c, sync, policies
    finally:
        c.close()


def _announce(version: str, by: str = "host:1:peer") -> str:
    return json.dumps({"version": version, "by": by, "at": time.time()})


def _reload_events(c: Container, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The ``policy_reload`` events, once there are ``count`` (they are written by a thread)."""
    deadline = time.monotonic() + timeout
    while True:
        with c.read_session() as s:
            found = [json.loads(b) for (b,) in s.execute(sa.text(
                "SELECT body FROM audit_events WHERE action = 'policy_reload' ORDER BY seq"))]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.mark.parametrize("payload", [
    "not json", "", "null", "[]", '"v1"', "{}", '{"by": "host:1:peer"}', '{"version": ""}',
    '{"version": "v2", "by": "host:1:peer"',  # cut short
])
def test_a_garbled_announcement_is_ignored(own: tuple[Container, PolicySync, Path],
                                           payload: str) -> None:
    c, sync, _ = own
    before = c.policy.version
    sync._handle(payload)  # never raises: the listener thread must outlive it
    assert sync.followed == 0
    assert c.policy.version == before
    assert _reload_events(c, 1, timeout=0.3) == []


def test_its_own_echo_and_its_own_version_change_nothing(
        own: tuple[Container, PolicySync, Path]) -> None:
    c, sync, _ = own
    sync._handle(_announce("some-other-version", by=sync.instance))  # our own NOTIFY
    sync._handle(_announce(c.policy.version))  # a peer already on our version
    assert sync.followed == 0
    assert _reload_events(c, 1, timeout=0.3) == []


def test_a_peer_version_over_broken_local_files_keeps_the_policy_and_says_so(
        own: tuple[Container, PolicySync, Path]) -> None:
    c, sync, policies = own
    before = c.policy.version
    assert c.policy.decide(AUDITOR, "alert_read", Resource()).effect == "allow"
    roles = policies / "roles.yaml"
    roles.write_text(roles.read_text(encoding="utf-8") + "\n  - id: [unclosed\n",
                     encoding="utf-8")
    sync._handle(_announce("a-version-this-worker-cannot-build"))
    assert sync.followed == 1
    assert c.policy.version == before  # the last policy that validated stays
    assert c.policy.decide(AUDITOR, "alert_read", Resource()).effect == "allow"
    (event,) = _reload_events(c, 1)
    assert event["event"]["outcome"] == "failure"
    labels = event["labels"]
    assert labels["trigger"] == "peer" and labels["version"] == before
    assert "roles.yaml" in labels["first_problem"]


def test_a_peer_version_other_than_the_local_files_give_keeps_what_validated(
        own: tuple[Container, PolicySync, Path], caplog: pytest.LogCaptureFixture) -> None:
    c, sync, policies = own
    alerts = policies / "alerts.yaml"
    alerts.write_text(alerts.read_text(encoding="utf-8") + "\n# 本机改动\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="quanguard.policy"):
        sync._handle(_announce("the-version-of-other-files"))
    assert sync.followed == 1
    local = c.policy.version
    assert local != "the-version-of-other-files"
    assert "the same policy directory" in caplog.text
    (event,) = _reload_events(c, 1)
    assert event["event"]["outcome"] == "success"
    assert event["labels"]["trigger"] == "peer" and event["labels"]["version"] == local
