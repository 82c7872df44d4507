"""A console sign-in with a key nobody here wrote — separators, control characters,
non-ASCII, a real key with something appended, a very long string, nothing — is refused
with one ``login`` event that names the key by its fingerprint and never holds the text
that was typed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from quanguard.auth import Principal, key_fingerprint
from quanguard.container import Container
from tests.console.test_console_login_events import _logins, console_sign_in

HOSTILE = {
    "newline": "qg_deadbeef_secret\n{\"decision\":\"allow\"}",
    "tab and NUL": "qg_dead\tbeef_\x00secret",
    "non-ASCII": "qg_钥匙_秘密口令秘密口令",
    "separators": "qg_a_b_c_d;key=qg_x_y|secret",
    "very long": "qg_" + "s" * 20_000,
}


@pytest.mark.parametrize("typed", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_key_is_refused_with_one_event_and_no_trace_of_it(
        container: Container, client: Any, typed: str) -> None:
    resp = console_sign_in(client, typed)
    assert resp.status_code == 401, resp.text[:300]
    assert "qg_console" not in resp.cookies
    (event,) = _logins(container)
    assert event.actor.id == "anonymous"
    assert event.decision is not None and event.decision.effect == "deny"
    assert event.outcome == "failure"
    assert event.labels["key_fingerprint"] == key_fingerprint(typed)
    stored = event.canonical_bytes().decode()
    assert "secret" not in stored and "秘密口令" not in stored and "s" * 100 not in stored


def test_a_real_key_with_text_appended_is_not_that_key(
        container: Container, client: Any, make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, me = make_key("auditor")
    resp = console_sign_in(client, key + "x")
    assert resp.status_code == 401
    (event,) = _logins(container)
    assert event.actor.id == "anonymous" and event.actor.id != me.id
    assert key not in event.canonical_bytes().decode()
