"""Secrets: API keys never in logs, errors, the audit trail, the store or the console; key files
0600; constant-time comparison; failed authentications rate-limited (429)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from fastapi.testclient import TestClient

from quanguard.auth import create_key, revoke_key
from quanguard.container import Container, build_container
from tests.conftest import make_settings
from tests.security.served import Served

REPO = Path(__file__).resolve().parents[2]


# --- constant-time comparison ----------------------------------------------------------
def _functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


def test_api_keys_are_compared_in_constant_time() -> None:
    fn = _functions(REPO / "quanguard" / "auth.py")["authenticate"]
    calls = [
        n for n in ast.walk(fn)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "compare_digest"
    ]
    assert calls, "authenticate() must compare key digests with hmac.compare_digest"
    assert all(isinstance(c.func, ast.Attribute) and isinstance(c.func.value, ast.Name)
               and c.func.value.id in ("hmac", "secrets") for c in calls)
    # No ordinary ==/!= on anything holding a key or its digest.
    secretish = {"key", "digest", "key_hash", "secret"}
    for node in ast.walk(fn):
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            touched = _names(node) & secretish
            assert not touched, f"auth.py:{node.lineno}: == on {touched}; use hmac.compare_digest"


def test_console_csrf_tokens_are_compared_in_constant_time() -> None:
    path = REPO / "quanguard" / "console" / "sessions.py"
    if not path.exists():
        pytest.skip("console not present in this build")
    fn = _functions(path).get("tokens_match")
    assert fn is not None
    assert any(isinstance(n, ast.Attribute) and n.attr == "compare_digest" for n in ast.walk(fn))


# --- key files -------------------------------------------------------------------------
_KEY_MAKERS = [
    ("monitor.checkpoint", "load_or_create_signer", lambda f, d: f(d)),
    ("desensitize.keys", "load_key_dir", lambda f, d: f(d)),
    ("exchange.receipts", "ReceiptSigner", lambda c, d: c.from_dir(d)),
    ("exchange.crypto", "MasterKey", lambda c, d: c.from_dir(d)),
]


@pytest.mark.parametrize(("module", "name", "make"), _KEY_MAKERS, ids=[m for m, _, _ in _KEY_MAKERS])
def test_key_files_are_created_0600_even_under_a_permissive_umask(tmp_path: Path, module: str, name: str,
                                                                  make: Callable[[Any, Path], object]) -> None:
    try:
        target = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        pytest.skip(f"{module}.{name} not present in this build")
    key_dir = tmp_path / "keys"
    key_dir.mkdir(mode=0o700)  # as build_container makes it
    old = os.umask(0)
    try:
        make(target, key_dir)
    finally:
        os.umask(old)
    files = [p for p in key_dir.rglob("*") if p.is_file()]
    assert files, f"{module}.{name} created no key file under {key_dir}"
    for path in files:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, f"{path.name} has mode {oct(mode)}"
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700  # not loosened


def test_the_service_key_dir_is_0700(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        container = build_container(make_settings(tmp_path))
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(container.settings.key_dir.stat().st_mode) == 0o700
    finally:
        container.close()


# --- rate limiting ---------------------------------------------------------------------
@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[Container, TestClient]]:
    from fastapi.testclient import TestClient

    from quanguard.api.app import create_app

    container = build_container(make_settings(tmp_path, auth_fail_limit=5))
    with TestClient(create_app(container)) as client:
        yield container, client
    container.close()


def test_failed_authentications_are_rate_limited(limited: tuple[Container, TestClient]) -> None:
    container, client = limited
    with container.session() as s, s.begin():
        good = create_key(s, role="auditor", org="网信办", name="aud").key
    assert client.get("/v1/whoami", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    statuses = [
        client.get("/v1/whoami", headers={"Authorization": f"Bearer qg_0000000{i}_{'x' * 43}"}).status_code
        for i in range(8)
    ]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses
    r = client.get("/v1/whoami", headers={"Authorization": f"Bearer {good}"})
    assert r.status_code == 429  # the address is locked out, whatever key it tries next
    assert r.json()["error"]["kind"] == "rate_limited"
    assert good not in r.text


def _console_login(client: TestClient | httpx.Client, key: str) -> httpx.Response | httpx2.Response:
    page = client.get("/console/login")
    token = re.search(r'name="csrf"\s+value="([^"]+)"', page.text) or re.search(
        r'value="([^"]+)"\s+name="csrf"', page.text
    )
    assert token, page.text[:500]
    return client.post("/console/login", data={"csrf": token.group(1), "key": key}, follow_redirects=False)


def test_console_sign_in_failures_count_against_the_same_limit(limited: tuple[Container, TestClient]) -> None:
    _container, client = limited
    if importlib.util.find_spec("quanguard.api.routes_console") is None:
        pytest.skip("console not present in this build")
    statuses = [_console_login(client, f"qg_0000000{i}_{'y' * 43}").status_code for i in range(8)]
    assert statuses[:5] == [401] * 5, statuses
    assert set(statuses[5:]) == {429}, (
        f"brute-forcing keys through /console/login is not rate-limited: {statuses}"
    )


# --- keys never leak: a served process, end to end -------------------------------------
@pytest.mark.slow
def test_keys_never_appear_in_logs_errors_trail_store_or_console(tmp_path: Path) -> None:
    served = Served(tmp_path / "svc")
    served.start()
    try:
        admin = served.admin_key
        assert admin, "no bootstrap key printed"
        auditor = served.make_key("auditor", org="市网信办")
        consumer = served.make_key("consumer", org="某银行")
        doomed = served.make_key("provider", org="市人社局", name="doomed")
        c = build_container(served.settings())
        with c.session() as s, s.begin():
            revoke_key(s, "doomed")
        c.close()
        fake = "qg_deadbeef_" + "Z" * 43
        keys = {"admin": admin, "auditor": auditor, "consumer": consumer, "revoked": doomed, "fake": fake}
        with httpx.Client(base_url=served.url, timeout=30) as http:
            for key in keys.values():
                r = http.get("/v1/whoami", headers={"Authorization": f"Bearer {key}"})
                assert key not in r.text
                # The key in places a careless logger would print: query, body, request id.
                r = http.post(
                    f"/v1/policy/decide?token={key}",
                    headers={"Authorization": f"Bearer {key}", "X-Request-ID": key[:60]},
                    json={"principal": {"role": "consumer", "org": "某银行"}, "action": "read_raw",
                          "resource": {"purpose": "统计分析", "dataset": "社保缴费"}},
                )
                assert r.status_code < 500 and key not in r.text, r.text[:300]
                r = http.get("/v1/nothing", headers={"Authorization": f"Basic {key}"})
                assert key not in r.text
            # Console: sign in as the auditor and open every page.
            login = _console_login(http, auditor)
            if login.status_code == 303:
                for page in ("/console/search", "/console/search?q=x", "/console/alerts", "/console/status"):
                    r = http.get(page)
                    assert all(k not in r.text for k in keys.values()), page
                assert all(auditor not in v for v in http.cookies.values())
        with httpx.Client(base_url=served.url, timeout=30) as fresh:
            assert _console_login(fresh, consumer).status_code == 403  # role refused, key not echoed
            assert _console_login(fresh, fake).status_code == 401
    finally:
        served.stop()
    # 1. logs (stderr JSON lines; stdout only carries the one bootstrap line)
    err = "\n".join(p.read_text(errors="replace") for p in served.root.glob("serve-*.err"))
    out = "\n".join(p.read_text(errors="replace") for p in served.root.glob("serve-*.out"))
    assert err.strip(), "the service logged nothing"
    for name, key in keys.items():
        assert key not in err, f"{name} key in the service log"
        assert key[12:40] not in err, f"part of the {name} key in the service log"
    assert [line for line in out.splitlines() if admin in line] == [
        f"bootstrap admin key (shown once, keep it safe): {admin}"
    ]
    for key in (auditor, consumer, doomed, fake):
        assert key not in out
    # 2. the store, byte for byte (tables, the audit trail, WAL)
    for path in (served.root / "var").rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            for name, key in keys.items():
                assert key.encode() not in blob, f"{name} key stored in {path.name}"
                assert key[12:].encode() not in blob, f"{name} key secret stored in {path.name}"


def test_a_key_pasted_into_a_purpose_is_not_kept_in_the_trail(tmp_path: Path) -> None:
    """Free text (purpose) is masked before storage (issue 3); an API key pasted there by
    mistake must not become a permanent, replicated part of the trail either."""
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from quanguard.api.app import create_app

    container = build_container(make_settings(tmp_path))
    try:
        with container.session() as s, s.begin():
            key = create_key(s, role="manager", org="市大数据局", name="mgr").key
        with TestClient(create_app(container)) as client:
            r = client.post(
                "/v1/policy/decide",
                headers={"Authorization": f"Bearer {key}"},
                json={"principal": {"role": "consumer", "org": "某银行"}, "action": "read_raw",
                      "resource": {"purpose": f"按要求使用密钥 {key} 查询", "grade": "L2"}},
            )
            assert r.status_code == 200, r.text
        with container.engine.connect() as conn:
            tables = [t for t in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'").scalars()]
            assert "audit_events" in tables, "audit trail not wired"
            rows = conn.execute(text("SELECT * FROM audit_events")).all()
        assert rows, "the decision was not recorded"
        assert not [row for row in rows if any(key[12:] in str(v) for v in row)]
    finally:
        container.close()
