"""The exchange CLI as an HTTP client, against the app in-process (contract: keys, exits)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from quanguard.auth import Principal
from quanguard.cli import client as client_mod
from quanguard.cli.main import build_app
from tests.quanguard.test_exchange_api import BANK, LAB, PROV_ORG, members


class _Authed:
    def __init__(self, http: Any, key: str) -> None:
        self.http, self.key = http, key

    def request(self, method: str, url: str, **kw: Any) -> Any:
        headers = {**kw.pop("headers", {}), "Authorization": f"Bearer {self.key}"}
        return self.http.request(method, url, headers=headers, **kw)


@pytest.fixture
def cli(client: TestClient, make_key: Callable[..., tuple[str, Principal]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Result]:
    keys = {"prov": make_key("provider", org=PROV_ORG)[0], "bank": make_key("consumer", org=BANK)[0],
            "lab": make_key("consumer", org=LAB)[0], "mgr": make_key("manager")[0]}
    current = {"key": keys["prov"]}
    monkeypatch.setattr(client_mod, "connect",
                        lambda: client_mod.ServiceClient(cast(httpx.Client, _Authed(client, current["key"]))))
    runner, app = CliRunner(), build_app()

    def run(who: str, *args: str) -> Result:
        current["key"] = keys[who]
        return runner.invoke(app, ["exchange", *args])

    csv = tmp_path / "members.csv"
    csv.write_bytes(members())
    r = run("prov", "register", str(csv), "--name", "members", "--key-column", "member",
            "--bounds", "income=0:30000", "--format", "json")
    assert r.exit_code == 0, r.output
    return run


def _json(r: Result) -> dict[str, Any]:
    assert r.exit_code == 0, (r.stdout, r.stderr)
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def test_register_contract(cli: Callable[..., Result]) -> None:
    r = cli("prov", "datasets", "--format", "json")
    meta = _json(r)["datasets"][0]
    assert {"dataset", "grade", "columns"} <= set(meta) and meta["grade"] == "L2"


def test_aggregate_result_jobs_and_verify(cli: Callable[..., Result], tmp_path: Path) -> None:
    out = _json(cli("bank", "aggregate", "members", "--agg", "mean", "--column", "income",
                    "--by", "sex", "--epsilon", "1", "--format", "json"))
    assert {"job", "status", "result", "suppressed_groups", "epsilon_spent", "budget_left",
            "receipt"} <= set(out)
    assert out["status"] == "done" and all(set(r) == {"group", "value"} for r in out["result"])
    again = _json(cli("bank", "result", out["job"], "--format", "json"))
    assert again["result"] == out["result"]
    assert [j["job"] for j in _json(cli("bank", "jobs", "--format", "json"))["jobs"]] == [out["job"]]
    f = tmp_path / "job.json"
    f.write_text(json.dumps(out, ensure_ascii=False))
    assert cli("bank", "verify-receipt", str(f)).exit_code == 0
    key = _json(cli("bank", "receipt-key", "--format", "json"))["public_key"]
    pinned = _json(cli("bank", "verify-receipt", str(f), "--public-key", key, "--format", "json"))
    assert pinned["valid"] and pinned["pinned"] and pinned["result_checked"]
    # it says who received the result, for what, and on whose approval (none needed here)
    assert pinned["version"] == 3 and pinned["consumer_org"] == out["receipt"]["consumer_org"]
    assert pinned["approved_by"] is None and pinned["rule_id"] == out["receipt"]["rule_id"]
    r = cli("bank", "verify-receipt", str(f), "--public-key", "00" * 32)
    assert r.exit_code == 1 and "different key" in r.stderr
    out["result"][0]["value"] += 1
    f.write_text(json.dumps(out, ensure_ascii=False))
    r = cli("bank", "verify-receipt", str(f))
    assert r.exit_code == 1 and r.stderr.startswith("error: ")
    f.write_text("not json")
    assert cli("bank", "verify-receipt", str(f)).exit_code == 1


def test_refusals_exit_nonzero_with_reason_on_stderr(cli: Callable[..., Result]) -> None:
    r = cli("bank", "aggregate", "members", "--agg", "count", "--where", "member=M000001")
    assert r.exit_code == 4 and "key column" in r.stderr and "Traceback" not in r.output
    r = cli("bank", "aggregate", "members", "--agg", "count", "--by", "member")
    assert r.exit_code == 4 and r.stderr.count("\n") == 1
    r = cli("lab", "result", "job-nope")
    assert r.exit_code == 5
    for _ in range(3):
        assert cli("bank", "aggregate", "members", "--agg", "count", "--epsilon", "0.6").exit_code == 0
    r = cli("bank", "aggregate", "members", "--agg", "count", "--epsilon", "0.6")
    assert r.exit_code == 4 and "budget" in r.stderr


def test_other_consumer_cannot_read_result(cli: Callable[..., Result]) -> None:
    job = _json(cli("bank", "aggregate", "members", "--agg", "count", "--format", "json"))["job"]
    r = cli("lab", "result", job)
    assert r.exit_code == 5 and job in r.stderr


def test_psi_cli(cli: Callable[..., Result], tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("M000001\nM000002\nZZ9\n")
    out = _json(cli("bank", "psi", "members", "--ids", str(ids), "--format", "json"))
    assert out["intersection_size"] == 2 and sorted(out["matches"]) == ["M000001", "M000002"]


def test_pending_then_approve_and_reject(cli: Callable[..., Result], tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    csv.write_bytes(members(phone=True))
    assert cli("prov", "register", str(csv), "--name", "contacts", "--key-column", "member").exit_code == 0
    pend = _json(cli("bank", "aggregate", "contacts", "--agg", "count", "--format", "json"))
    assert pend["status"] == "pending_approval"
    assert cli("bank", "approve", pend["job"], "--reason", "x").exit_code == 4
    done = _json(cli("mgr", "approve", pend["job"], "--reason", "合规", "--format", "json"))
    assert done["status"] == "done"
    pend2 = _json(cli("bank", "aggregate", "contacts", "--agg", "count", "--format", "json"))
    rej = _json(cli("mgr", "reject", pend2["job"], "--reason", "目的不明", "--format", "json"))
    assert rej["status"] == "rejected" and rej["reason"] == "目的不明"


def test_extract_writes_file_or_refuses(cli: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "copy.csv"
    got = _json(cli("bank", "extract", "members", "-o", str(out), "--format", "json"))
    assert out.stat().st_size == got["bytes"] > 0 and got["status"] == "done"
    job = _json(cli("bank", "result", got["job"], "--format", "json"))
    assert job["extract"]["watermarked"] and job["extract"]["mask_profile"] == "共享"
    receipt = tmp_path / "r.json"
    receipt.write_text(json.dumps(job["receipt"]))
    assert cli("bank", "verify-receipt", str(receipt), "--data", str(out)).exit_code == 0
    out.write_text(out.read_text() + "x\n")
    assert cli("bank", "verify-receipt", str(receipt), "--data", str(out)).exit_code == 1
    csv = tmp_path / "c.csv"
    csv.write_bytes(members(phone=True))
    assert cli("prov", "register", str(csv), "--name", "contacts", "--key-column", "member").exit_code == 0
    refused = tmp_path / "refused.csv"
    r = cli("bank", "extract", "contacts", "-o", str(refused))
    assert r.exit_code == 4 and "L3" in r.stderr and not refused.exists()


def test_cli_without_key_or_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUANGUARD_API_KEY", raising=False)
    r = CliRunner().invoke(build_app(), ["exchange", "datasets"])
    assert r.exit_code == 3 and "QUANGUARD_API_KEY" in r.stderr
    monkeypatch.setenv("QUANGUARD_API_KEY", "k")
    monkeypatch.setenv("QUANGUARD_URL", "http://127.0.0.1:9")
    r = CliRunner().invoke(build_app(), ["exchange", "datasets"])
    assert r.exit_code == 7 and "cannot reach" in r.stderr


def test_psi_approval_runs_the_stored_request_from_the_cli(cli: Callable[..., Result], tmp_path: Path) -> None:
    from tests.quanguard.test_exchange_flows import csv_bytes, resident_id

    rids = [resident_id(i) for i in range(300)]
    csv = tmp_path / "r.csv"
    csv.write_bytes(csv_bytes({"rid": rids, "n": list(range(300))}))
    meta = _json(cli("prov", "register", str(csv), "--name", "residents", "--key-column", "rid",
                     "--format", "json"))
    assert meta["grade"] == "L4" and meta["budget_family"] == "residents"
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(rids[:4] + [resident_id(90_000 + i) for i in range(8)]) + "\n")
    pend = _json(cli("bank", "psi", "residents", "--ids", str(ids), "--format", "json"))
    assert pend["status"] == "pending_approval" and pend["request"]["size"] == 12
    state = Path(pend["state"])
    assert state.exists() and state.stat().st_mode & 0o077 == 0
    listed = cli("mgr", "jobs", "--status", "pending_approval")
    assert listed.exit_code == 0 and "12" in listed.stdout
    assert _json(cli("mgr", "approve", pend["job"], "--reason", "核验", "--format", "json"))["status"] == "approved"
    other = tmp_path / "other.txt"
    other.write_text("\n".join(rids[:200]) + "\n")
    r = cli("bank", "psi", "residents", "--ids", str(other), "--job", pend["job"])
    assert r.exit_code == 2  # no saved request for these identifiers
    done = _json(cli("bank", "psi", "residents", "--ids", str(ids), "--job", pend["job"],
                     "--format", "json"))
    assert done["intersection_size"] == 4 and "matches" not in done
    assert not state.exists()
