"""A console sign-in refused by the failed-authentication limit (429) is an attempt too: it
leaves a ``login`` deny event like the API's rate-limited requests do, throttled the same
way (one anonymous event per source address a minute, the next one counting the rest)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from monitor.events import AuditEvent
from quanguard.api.app import create_app
from quanguard.api.recording import RequestRecorder
from quanguard.auth import key_fingerprint
from quanguard.container import Container, build_container
from tests.conftest import make_settings
from tests.console.test_console_login_events import console_sign_in


def _logins(container: Container) -> list[AuditEvent]:
    store = container.audit.store
    with container.session() as session:
        events = [store.get(session, row.seq) for row in store.iter_range(session, 1)]
    return [e for e in events if e.action == "login"]


def test_a_rate_limited_sign_in_is_recorded_once_a_minute(tmp_path: Path) -> None:
    container = build_container(make_settings(tmp_path, auth_fail_limit=2))
    try:
        with TestClient(create_app(container)) as client:
            guesses = [f"qg_0000000{i}_{'z' * 43}" for i in range(5)]
            codes = [console_sign_in(client, key).status_code for key in guesses]
            assert codes == [401, 401, 429, 429, 429]
            events = _logins(container)
            # once the minute is over, the next event counts the attempts folded in
            RequestRecorder.of(container).throttle.window = 0.0
            assert console_sign_in(client, guesses[0]).status_code == 429
            later = _logins(container)[len(events):]
    finally:
        container.close()
    assert len(events) == 3  # two refused keys, then one event for the limited attempts
    limited = events[-1]
    assert limited.actor.id == "anonymous"
    assert limited.decision is not None and limited.decision.effect == "deny"
    assert limited.outcome == "failure"
    assert limited.reason is not None and "too many failed authentications" in limited.reason
    assert limited.labels["channel"] == "console"
    assert limited.labels["key_fingerprint"] == key_fingerprint(guesses[2])
    assert all(key not in limited.canonical_bytes().decode() for key in guesses)
    (after,) = later
    assert after.labels["suppressed"] == "2" and after.actor.id == "anonymous"
