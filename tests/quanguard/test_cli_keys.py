"""`quanguard keys` on a fresh folder: the store is created on first use."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result


def test_create_prints_only_the_key(run: Callable[..., Result], tmp_path: Path) -> None:
    r = run("keys", "create", "--role", "provider", "--org", "市人社局", "--name", "rsj")
    assert r.exit_code == 0, r.output
    assert re.fullmatch(r"qg_[0-9a-f]{8}_[A-Za-z0-9_\-]{43}\n", r.stdout)
    assert (tmp_path / "var" / "quanguard.db").exists()
    assert oct((tmp_path / "keys").stat().st_mode & 0o777) == "0o700"


def test_list_and_revoke(run: Callable[..., Result]) -> None:
    key = run("keys", "create", "--role", "auditor", "--org", "市网信办", "--name", "aud").stdout.strip()
    listed = json.loads(run("keys", "list", "--format", "json").stdout)
    assert [(k["name"], k["role"], k["status"]) for k in listed] == [("aud", "auditor", "active")]
    assert key not in run("keys", "list").stdout
    assert run("keys", "revoke", "aud").exit_code == 0
    assert json.loads(run("keys", "list", "--format", "json").stdout)[0]["status"] == "revoked"


@pytest.mark.parametrize(
    "args, code, message",
    [
        (("keys", "create", "--role", "root", "--org", "x", "--name", "n"), 2, "unknown role 'root'"),
        (("keys", "revoke", "ghost"), 5, "no key named 'ghost'"),
    ],
)
def test_bad_requests_exit_nonzero_with_one_line(run: Callable[..., Result], args: tuple[str, ...], code: int, message: str) -> None:
    r = run(*args)
    assert r.exit_code == code
    assert message in r.stderr
    assert "Traceback" not in r.output


def test_non_admin_key_may_not_manage_keys(run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    key = run("keys", "create", "--role", "consumer", "--org", "某银行", "--name", "bank").stdout.strip()
    monkeypatch.setenv("QUANGUARD_API_KEY", key)
    r = run("keys", "create", "--role", "admin", "--org", "x", "--name", "evil")
    assert r.exit_code == 4
    assert "policy does not allow key_admin" in r.stderr
