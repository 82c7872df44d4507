"""People get Rich tables, machines one JSON document; never a Python repr. Relative times,
untruncated key lists, progress only on a terminal."""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import Result

from quanguard.cli.output import parse_when, show
from tests.quanguard.test_audit_cli import plain_lines
from tests.quanguard.test_audit_cli import run as audit_run  # noqa: F401 - fixture
from tests.quanguard.test_exchange_api import members
from tests.quanguard.test_exchange_cli import cli  # noqa: F401 - fixture

_REPR = re.compile(r"\{'|\['|'\s*:\s*'|\bNone\b|\bTrue\b|\bFalse\b")


def _as_auditor(run: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Searching the trail takes an auditor's key (the local operator may not)."""
    r = run("keys", "create", "--role", "auditor", "--org", "市审计局", "--name", "aud")
    assert r.exit_code == 0, r.output
    monkeypatch.setenv("QUANGUARD_API_KEY", r.stdout.strip())


def _no_repr(text: str) -> None:
    assert not _REPR.search(text), f"a Python repr reached the user:\n{text}"


def test_exchange_register_aggregate_budget_approve_print_tables(cli: Callable[..., Result], tmp_path: Path) -> None:  # noqa: F811
    csv = tmp_path / "c.csv"
    csv.write_bytes(members(phone=True))
    r = cli("prov", "register", str(csv), "--name", "contacts", "--key-column", "member")
    assert r.exit_code == 0, r.output
    assert "contacts" in r.stdout
    _no_repr(r.stdout)
    r = cli("bank", "aggregate", "members", "--agg", "mean", "--column", "income", "--by", "sex",
            "--epsilon", "1")
    assert r.exit_code == 0, r.output
    _no_repr(r.stdout)
    r = cli("bank", "budget", "members")
    assert r.exit_code == 0, r.output
    _no_repr(r.stdout)
    pend = json.loads(cli("bank", "aggregate", "contacts", "--agg", "count", "--format", "json").stdout)
    r = cli("mgr", "approve", pend["job"], "--reason", "合规")
    assert r.exit_code == 0, r.output
    assert pend["job"] in r.stdout
    _no_repr(r.stdout)


def test_show_renders_nested_values_as_tables(capsys: pytest.CaptureFixture[str]) -> None:
    show({"job": "j1", "ok": True, "none": None, "extra": {"a": 1},
          "rows": [{"group": {"sex": "F"}, "value": 1.5}]})
    out = capsys.readouterr().out
    assert "j1" in out and "yes" in out and '{"a": 1}' in out and '{"sex": "F"}' in out
    _no_repr(out)


def test_keys_list_is_not_cut_at_80_columns(audit_run: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("COLUMNS", "80")
    org = "市大数据发展管理局数据安全监管处第三科" * 2
    name = "a-very-long-key-holder-name-for-the-data-exchange-" + "x" * 30
    assert audit_run("keys", "create", "--role", "auditor", "--org", org, "--name", name).exit_code == 0
    r = audit_run("keys", "list")
    assert r.exit_code == 0, r.output
    assert name in r.stdout and org in r.stdout and "…" not in r.stdout.replace("_…", "")


@pytest.mark.parametrize("value, delta", [("15m", timedelta(minutes=15)), ("24h", timedelta(hours=24)),
                                          ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2))])
def test_relative_times(value: str, delta: timedelta) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert parse_when(value, now=now) == now - delta


def test_rfc3339_times() -> None:
    assert parse_when("2026-03-01T20:00:00+08:00") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert parse_when("2026-03-01T12:00:00Z") == datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["yesterday", "15", "-5m", "2026-03-01", "2026-03-01T12:00:00", "7x"])
def test_bad_times_are_refused(bad: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_when(bad)


def test_audit_search_since_relative_and_bad_value_exit_2(audit_run: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    nd = tmp_path / "e.ndjson"
    nd.write_text("\n".join(plain_lines(5)) + "\n", encoding="utf-8")
    assert audit_run("audit", "ingest", str(nd), "--format", "json").exit_code == 0
    _as_auditor(audit_run, monkeypatch)
    got = json.loads(audit_run("audit", "search", "--action", "query", "--since", "3h", "--format", "json").stdout)
    assert got["total"] == 5
    got = json.loads(audit_run("audit", "search", "--action", "query", "--since", "15m", "--format", "json").stdout)
    assert got["total"] == 0
    r = audit_run("audit", "search", "--since", "yesterday")
    assert r.exit_code == 2
    assert "--since" in r.output and "15m" in r.output and "Traceback" not in r.output


def test_audit_search_new_aggregations(audit_run: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    nd = tmp_path / "e.ndjson"
    nd.write_text("\n".join(plain_lines(5)) + "\n", encoding="utf-8")
    assert audit_run("audit", "ingest", str(nd), "--format", "json").exit_code == 0
    _as_auditor(audit_run, monkeypatch)
    args = ["audit", "search", "--action", "query", "--since", "1d"]
    for agg in ("by_org", "by_dataset", "by_grade", "by_ip", "by_action", "sum(rows)"):
        args += ["--agg", agg]
    got = json.loads(audit_run(*args, "--format", "json").stdout)
    aggs = {name: {b["key"]: b["count"] for b in buckets} for name, buckets in got["aggs"].items()}
    assert aggs["by_org"] == {"市局": 5} and aggs["by_dataset"] == {"d": 5}
    assert aggs["by_grade"] == {"L2": 5} and aggs["by_action"] == {"query": 5}
    assert aggs["sum(rows)"] == {"rows": 0 + 1 + 2 + 3 + 4}
    assert aggs["by_source_ip"] == {}  # by_ip is by_source_ip; these lines carry no address
    r = audit_run(*args)
    assert r.exit_code == 0 and "sum(rows)" in r.stdout
    _no_repr(r.stdout)


def test_no_progress_bar_when_stderr_is_not_a_terminal(audit_run: Callable[..., Any], tmp_path: Path) -> None:  # noqa: F811
    nd = tmp_path / "e.ndjson"
    nd.write_text("\n".join(plain_lines(3)) + "\n", encoding="utf-8")
    r = audit_run("audit", "ingest", str(nd))
    assert r.exit_code == 0
    assert "━" not in r.output and "%" not in r.stderr


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_has_percentage_and_eta_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from quanguard.cli.output import bar, count_records

    src = tmp_path / "t.csv"
    src.write_text("a,b\n" + "1,2\n" * 40, encoding="utf-8")
    err = _Tty()
    monkeypatch.setattr(sys, "stderr", err)
    assert count_records(str(src)) == 40
    with bar("masking", count_records(str(src))) as update:
        for _ in range(4):
            update(10)
    shown = err.getvalue()
    assert "%" in shown and "ETA" in shown and "40/40" in shown


def test_no_bar_and_no_count_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    from quanguard.cli.output import bar, count_records

    src = tmp_path / "t.csv"
    src.write_text("a\n1\n", encoding="utf-8")
    assert count_records(str(src)) is None  # pytest's stderr is not a terminal
    with bar("masking", 10) as update:
        assert update is None


@pytest.mark.parametrize(("status", "kind", "code"), [
    (415, "unsupported_media", 2), (413, "too_large", 2), (400, "invalid", 2), (403, "forbidden", 4)])
def test_a_client_command_exits_by_the_kind_of_error_the_service_answered(status: int, kind: str,
                                                                          code: int) -> None:
    import httpx

    from quanguard.cli.client import ServiceClient
    from quanguard.errors import ServiceError, classify

    reply = {"error": {"kind": kind, "message": "nope", "request_id": "r1"}}
    http = httpx.Client(transport=httpx.MockTransport(lambda req: httpx.Response(status, json=reply)))
    with pytest.raises(ServiceError) as caught:
        ServiceClient(http, base="http://svc").post("/v1/x", json={})
    info = classify(caught.value)
    assert info is not None and (info.kind, info.exit_code) == (kind, code)
