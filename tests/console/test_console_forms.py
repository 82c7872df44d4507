"""Console forms and headers without a browser: CSRF, cookie flags, security headers."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quanguard.api.app import create_app
from quanguard.container import Container


def _login_token(client: Any) -> str:
    page = client.get("/console/login")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def _sign_in(client: Any, key: str) -> Any:
    token = _login_token(client)
    return client.post("/console/login", data={"key": key, "csrf": token},
                       follow_redirects=False)


def test_login_needs_the_forms_token(client: Any, make_key: Callable[..., Any]) -> None:
    key, _ = make_key("auditor")
    client.get("/console/login")
    resp = client.post("/console/login", data={"key": key, "csrf": "forged"},
                       follow_redirects=False)
    assert resp.status_code == 400
    assert "qg_console=" not in resp.headers.get("set-cookie", "")


def test_session_cookie_flags_and_no_key_inside(client: Any, make_key: Callable[..., Any]) -> None:
    key, _ = make_key("auditor")
    resp = _sign_in(client, key)
    assert resp.status_code == 303 and resp.headers["location"] == "/console/search"
    cookie = next(c for c in resp.headers.get_list("set-cookie") if c.startswith("qg_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert key not in value and len(value) >= 40


def test_cookie_is_secure_over_https(container: Container, make_key: Callable[..., Any]) -> None:
    key, _ = make_key("manager")
    with TestClient(create_app(container), base_url="https://testserver") as client:
        resp = _sign_in(client, key)
    cookie = next(c for c in resp.headers.get_list("set-cookie") if c.startswith("qg_console="))
    assert "Secure" in cookie


@pytest.mark.parametrize("path", ["/console/login", "/console/search"])
def test_pages_carry_security_headers(client: Any, make_key: Callable[..., Any], path: str) -> None:
    key, _ = make_key("auditor")
    _sign_in(client, key)
    resp = client.get(path, follow_redirects=False)
    assert resp.status_code in (200, 303)
    csp = resp.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "form-action 'self'" in csp and "script-src" not in csp
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["cache-control"] == "no-store"


def test_alert_form_with_a_forged_token_is_refused(client: Any,
                                                   make_key: Callable[..., Any]) -> None:
    key, _ = make_key("auditor")
    _sign_in(client, key)
    resp = client.post("/console/alerts/a1", data={"csrf": "forged", "status": "closed"},
                       follow_redirects=False)
    assert resp.status_code == 403
    assert "security token did not match" in resp.text


def test_sign_out_needs_the_token(client: Any, make_key: Callable[..., Any]) -> None:
    key, _ = make_key("auditor")
    _sign_in(client, key)
    client.post("/console/logout", data={"csrf": "forged"}, follow_redirects=False)
    # The browser lost its cookie, but a forged sign-out did not end the server session
    # (a cross-site POST can no longer sign a user out, even without SameSite).
    from quanguard.console.sessions import get_store

    assert len(get_store(client.app.state.container)) == 1


def test_unsigned_visitors_are_sent_to_sign_in(client: Any) -> None:
    for path in ("/console", "/console/search", "/console/alerts", "/console/status"):
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"] == "/console/login"
    resp = client.post("/console/alerts/x", data={}, follow_redirects=False)
    assert resp.headers["location"] == "/console/login"


def test_sign_in_failures_count_against_the_api_limit(tmp_path: Any) -> None:
    """Guessing keys through the sign-in form is limited like bearer keys (same counter)."""
    from quanguard.container import build_container
    from tests.conftest import make_settings

    container = build_container(make_settings(tmp_path, auth_fail_limit=4))
    try:
        with TestClient(create_app(container)) as client:
            codes = [_sign_in(client, f"qg_0000000{i}_{'z' * 43}").status_code for i in range(6)]
            assert codes == [401, 401, 401, 401, 429, 429]
            assert "too many failed authentications" in _sign_in(client, "qg_x_y").text
            # The API shares the counter: a bearer request from the same address is refused.
            assert client.get("/v1/whoami", headers={"Authorization": "Bearer qg_1_2"}).status_code == 429
    finally:
        container.close()
