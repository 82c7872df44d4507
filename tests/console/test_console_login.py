"""Signing in to the console in a real headless Chromium: cookie, roles, sign-out."""

from __future__ import annotations

from typing import Any

import pytest

from tests.console.conftest import LiveService

pytestmark = pytest.mark.browser


def _cookies(page: Any) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in page.context.cookies()}


@pytest.mark.parametrize("role", ["auditor", "manager", "admin"])
def test_security_roles_sign_in_with_a_session_cookie(page: Any, live: LiveService,
                                                      sign_in: Any, role: str) -> None:
    sign_in(role)
    assert page.url.endswith("/console/search")
    assert role in page.inner_text("#whoami")
    cookie = _cookies(page)["qg_console"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain http here; Secure is set over https
    # The key itself is nowhere: not in the cookie, not in the page.
    key = live.key(role)
    assert key not in cookie["value"] and key not in page.content()
    assert all(key not in c["value"] for c in page.context.cookies())


def test_other_roles_get_a_clear_message(page: Any, live: LiveService, sign_in: Any) -> None:
    sign_in("consumer")
    text = page.inner_text("#denied")
    assert "consumer" in text and "auditors, managers and administrators" in text
    assert "qg_console" not in _cookies(page)
    page.goto(f"{live.url}/console/search")
    assert page.url.endswith("/console/login")


def test_a_bad_key_is_refused_without_echoing_it(page: Any, live: LiveService) -> None:
    page.goto(f"{live.url}/console/login")
    page.fill("#key", "qg_deadbeef_not-a-real-key-at-all")
    page.click("#signin")
    assert "Sign-in failed" in page.inner_text("#login-error")
    assert "not-a-real-key" not in page.content()
    assert "qg_console" not in _cookies(page)


def test_sign_out_ends_the_session(page: Any, live: LiveService, sign_in: Any) -> None:
    sign_in("auditor")
    old = _cookies(page)["qg_console"]["value"]
    page.click("#logout")
    assert page.url.endswith("/console/login")
    # The old session id is dead on the server, not only forgotten by the browser.
    page.context.add_cookies([{"name": "qg_console", "value": old, "url": live.url + "/console"}])
    page.goto(f"{live.url}/console/search")
    assert page.url.endswith("/console/login")


def test_revoking_the_key_ends_its_sessions(page: Any, live: LiveService, sign_in: Any) -> None:
    from quanguard.auth import revoke_key

    sign_in("manager")
    assert page.url.endswith("/console/search")
    name = live.keys["manager"][1].name
    with live.container.session() as session, session.begin():
        revoke_key(session, name)
    page.goto(f"{live.url}/console/search")
    assert page.url.endswith("/console/login")
