"""POST /v1/mask, POST /v1/unmask and the mask/unmask CLI: policy, audit, no values in audit."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faker import Faker
from fastapi.testclient import TestClient

from quanguard.auth import Principal
from quanguard.container import Container, build_container
from tests.conftest import auth, make_settings

REPO_POLICIES = Path(__file__).resolve().parents[2] / "policies"


def records(n: int = 40, seed: int = 5) -> list[dict[str, object]]:
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    out: list[dict[str, object]] = []
    for i in range(n):
        name, tel = fake.name(), fake.phone_number()
        out.append({"编号": i, "姓名": name, "身份证号": fake.ssn(), "联系电话": tel,
                    "备注": f"来电人{name}，电话{tel}", "金额": 12.5})
    return out


def audit_docs(container: Container) -> list[dict[str, Any]]:
    with container.session() as session:
        return [json.loads(e.body) for e in container.audit.store.iter_range(session)]


def test_mask_json_records(client: TestClient, container: Container, make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, _ = make_key("provider")
    data = records()
    resp = client.post("/v1/mask", json={"records": data}, headers=auth(key))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    out, summary = body["records"], body["summary"]
    assert len(out) == len(data) and [list(r) for r in out] == [list(r) for r in data]
    assert summary["profile"] == "共享"
    dumped = json.dumps(out, ensure_ascii=False)
    for r in data:
        for col in ("姓名", "身份证号", "联系电话"):
            assert str(r[col]) not in dumped
    assert [r["编号"] for r in out] == [r["编号"] for r in data]  # non-PII keeps its JSON type
    assert out[0]["金额"] == 12.5
    assert "k_anonymity" in summary and "before" in summary["k_anonymity"]
    # the audit event names columns and digests, never values
    docs = [d for d in audit_docs(container) if "mask" in json.dumps(d)]
    assert docs
    text = json.dumps(docs, ensure_ascii=False)
    assert "身份证号" in text and summary["output_sha256"] in text and summary["input_sha256"] in text
    assert all(str(r["身份证号"]) not in text and str(r["姓名"]) not in text for r in data)
    key_hex = (container.settings.key_dir / "mask.key").read_text().strip()
    assert key_hex not in text and key_hex[:16] not in text


def test_mask_streams_csv_and_ndjson(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, _ = make_key("provider")
    data = records(20)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(data[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(data)
    resp = client.post("/v1/mask?profile=分析", content=buf.getvalue().encode(),
                       headers={**auth(key), "content-type": "text/csv"})
    assert resp.status_code == 200, resp.text
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert len(rows) == 20 and all(r["身份证号"].startswith("ID-") for r in rows)
    summary = json.loads(resp.headers["x-quanguard-mask-summary"])
    assert summary["profile"] == "分析" and summary["rows"] == 20
    nd = "\n".join(json.dumps(r, ensure_ascii=False) for r in data) + "\n"
    resp = client.post("/v1/mask", content=nd.encode(),
                       headers={**auth(key), "content-type": "application/x-ndjson"})
    assert resp.status_code == 200, resp.text
    lines = [json.loads(x) for x in resp.text.splitlines()]
    assert len(lines) == 20 and lines[0]["姓名"].endswith("*")


@pytest.mark.parametrize(
    ("payload", "status", "kind"),
    [({"records": "x"}, 400, "invalid"), ({"records": [{"a": "1"}], "profile": "无此方案"}, 404, "not_found"),
     ({"records": [1, 2]}, 400, "invalid"), ({"records": [], "profile": "共享"}, 400, "invalid")],
)
def test_mask_bad_requests(client: TestClient, make_key: Callable[..., tuple[str, Principal]], payload: dict[str, object], status: int, kind: str) -> None:
    key, _ = make_key("provider")
    resp = client.post("/v1/mask", json=payload, headers=auth(key))
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["kind"] == kind


def test_mask_too_many_records(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, _ = make_key("provider")
    resp = client.post("/v1/mask", json={"records": [{}] * 100_001}, headers=auth(key))
    assert resp.status_code == 413


def test_mask_requires_auth_and_policy(client: TestClient, container: Container, make_key: Callable[..., tuple[str, Principal]]) -> None:
    assert client.post("/v1/mask", json={"records": records(2)}).status_code == 401
    key, _ = make_key("consumer")
    resp = client.post("/v1/mask", json={"records": records(3)}, headers=auth(key))
    assert resp.status_code == 403
    assert any(d.get("event", {}).get("outcome") == "failure" or "denied" in json.dumps(d)
               for d in audit_docs(container))


def test_unmask_refused_by_default_policy_and_audited(client: TestClient, container: Container,
                                                     make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, _ = make_key("provider")
    masked = client.post("/v1/mask", json={"records": records(5)}, headers=auth(key)).json()
    resp = client.post("/v1/unmask", json={"records": masked["records"], "columns": ["身份证号"]},
                       headers=auth(key))
    assert resp.status_code == 403 and "approval" in resp.json()["error"]["message"]
    assert "unmask" in json.dumps(audit_docs(container)[-1], ensure_ascii=False)


@pytest.fixture
def unmask_container(tmp_path: Path) -> Iterator[Container]:
    policies = tmp_path / "policies"
    shutil.copytree(REPO_POLICIES, policies)
    roles = policies / "roles.yaml"
    text = roles.read_text(encoding="utf-8")
    start = text.index("  - id: officer-unmask")
    end = text.index("\n\n", start)
    block = text[start:end].replace("effect: approval_required", "effect: allow")
    block = block.split("    obligations:")[0].rstrip("\n")
    roles.write_text(text[:start] + block + text[end:], encoding="utf-8")
    c = build_container(make_settings(tmp_path, policy_dir=policies))
    yield c
    c.close()


def test_unmask_round_trip_when_policy_allows(unmask_container: Container) -> None:
    from fastapi.testclient import TestClient

    from quanguard.api.app import create_app
    from quanguard.auth import create_key

    with unmask_container.session() as s, s.begin():
        key = create_key(s, role="officer", org="市大数据局", name="officer-x").key
        provider = create_key(s, role="provider", org="市大数据局", name="provider-x").key
    data = records(8)
    with TestClient(create_app(unmask_container)) as client:
        masked = client.post("/v1/mask", json={"records": data}, headers=auth(provider)).json()["records"]
        assert all(m["身份证号"] != d["身份证号"] for m, d in zip(masked, data, strict=True))
        resp = client.post("/v1/unmask", json={"records": masked, "columns": ["身份证号"]}, headers=auth(key))
        assert resp.status_code == 200, resp.text
    assert [r["身份证号"] for r in resp.json()["records"]] == [r["身份证号"] for r in data]


def test_cli_mask_and_unmask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unmask_container: Container) -> None:
    from typer.testing import CliRunner

    from quanguard.cli.main import build_app

    app = build_app()
    monkeypatch.delenv("QUANGUARD_API_KEY", raising=False)
    settings = unmask_container.settings
    for k, v in {"QUANGUARD_DB_URL": settings.db_url, "QUANGUARD_POLICY_DIR": str(settings.policy_dir),
                 "QUANGUARD_KEY_DIR": str(settings.key_dir), "QUANGUARD_DATA_DIR": str(settings.data_dir)}.items():
        monkeypatch.setenv(k, v)
    src = tmp_path / "in.csv"
    data = records(10)
    with src.open("w", encoding="gbk", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(data[0]))
        w.writeheader()
        w.writerows(data)
    runner = CliRunner()
    out = tmp_path / "out.csv"
    plan = tmp_path / "plan.yaml"
    plan.write_text("columns:\n  姓名: {op: encrypt}\n", encoding="utf-8")
    res = runner.invoke(app, ["mask", str(src), "-o", str(out), "--plan", str(plan), "--format", "json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["rows"] == 10 and summary["profile"] == "共享"
    assert out.read_bytes().decode("gb18030").count("\n") == 11
    res = runner.invoke(app, ["mask", str(src), "-o", str(tmp_path / "x.csv"), "--profile", "nope"])
    assert res.exit_code == 5 and not (tmp_path / "x.csv").exists()
    bad_key = tmp_path / "k"
    bad_key.write_bytes(b"short")
    res = runner.invoke(app, ["mask", str(src), "-o", str(tmp_path / "y.csv"), "--key-file", str(bad_key)])
    assert res.exit_code == 2 and "32 bytes" in res.output and not (tmp_path / "y.csv").exists()
    # the local operator is an admin: the policy forbids admins to unmask (三权分立)
    res = runner.invoke(app, ["unmask", str(out), "-o", str(tmp_path / "back.csv"), "--columns", "身份证号"])
    assert res.exit_code == 4
    with unmask_container.session() as s, s.begin():
        from quanguard.auth import create_key

        key = create_key(s, role="officer", org="本机", name="officer-cli").key
    monkeypatch.setenv("QUANGUARD_API_KEY", key)
    res = runner.invoke(app, ["unmask", str(out), "-o", str(tmp_path / "back.csv"), "--columns", "身份证号,姓名"])
    assert res.exit_code == 0, res.output
    back = list(csv.DictReader(io.StringIO((tmp_path / "back.csv").read_text(encoding="gb18030"))))
    assert [r["身份证号"] for r in back] == [r["身份证号"] for r in data]
    assert [r["姓名"] for r in back] == [r["姓名"] for r in data]
    masked = list(csv.DictReader(io.StringIO(out.read_text(encoding="gb18030"))))
    # AES-SIV tokens, or SIV over SM4 under the gm suite: the token names its algorithm
    token = "SM4SIV:" if os.environ.get("QUANGUARD_CRYPTO") == "gm" else "SIV:"
    assert all(r["姓名"].startswith(token) for r in masked)
    res = runner.invoke(app, ["unmask", str(out), "-o", str(tmp_path / "b2.csv"), "--columns", "无此列"])
    assert res.exit_code == 2 and not (tmp_path / "b2.csv").exists()


def test_mask_free_text_lines(client: TestClient, tmp_path: Path, make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, _ = make_key("provider")
    fake = Faker("zh_CN")
    fake.seed_instance(9)
    people = [(fake.name(), fake.phone_number(), fake.ssn()) for _ in range(12)]
    lines = [f"工单{i}：市民{n}来电，电话{p}，身份证号{s}，反映小区噪音。" for i, (n, p, s) in enumerate(people)]
    body = ("\r\n".join(lines) + "\r\n").encode("gb18030")
    resp = client.post("/v1/mask", content=body,
                       headers={**auth(key), "content-type": "text/plain"})
    assert resp.status_code == 200, resp.text
    out = resp.content.decode("gb18030")
    assert out.count("\r\n") == len(lines)
    for n, p, s in people:
        assert p not in out and s not in out
    assert all("反映小区噪音。" in line for line in out.splitlines())


def test_mask_use_case_on_sqlite_and_postgresql(any_container: Container) -> None:
    from quanguard.auth import create_key
    from quanguard.usecases import mask as uc

    with any_container.session() as s, s.begin():
        principal = create_key(s, role="provider", org="市大数据局", name="p-any").principal
    data = records(6)
    out, outcome = uc.mask_records(any_container, principal, data, body_sha256="0" * 64)
    assert len(out) == 6 and outcome.profile == "共享"
    docs = audit_docs(any_container)
    assert outcome.output_sha256 in json.dumps(docs)
