"""`quanguard scan` contract and `POST /v1/scan` / inventory over HTTP; bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import Result

from quanguard.auth import Principal
from quanguard.container import Container
from tests.conftest import auth

CSV = ("XM,SFZH,LXDH,JTZZ,SL\n"
       "王建国,11010519491231002X,13812345678,山东省济南市历下区经十路123号,5\n"
       "欧阳娜娜,320311196107317786,138-1234-5679,济南市市中区英雄山路129号3号楼2单元501室,7\n"
       "买买提·艾力,130721193801203397,+86 15912345678,槐荫区经四路36号院2号楼,9\n")


def test_table_json_contract(run: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text(CSV, encoding="gbk")
    r = run("scan", str(tmp_path / "people.csv"), "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    cols = {c["name"]: c for c in doc["columns"]}
    assert {n: c["entity"] for n, c in cols.items()} == {
        "XM": "PERSON", "SFZH": "CN_RESIDENT_ID", "LXDH": "PHONE_NUMBER", "JTZZ": "LOCATION", "SL": None}
    for c in doc["columns"]:
        assert set(c) >= {"name", "entity", "confidence", "hit_rate", "grade"}
    assert doc["rows_scanned"] == 3 and doc["dataset_grade"] is not None
    again = json.loads(run("scan", str(tmp_path / "people.csv"), "--format", "json", "--full").stdout)
    assert again["version"] == doc["version"] and again["sampled"] is False


def test_text_json_contract(run: Callable[..., Result], tmp_path: Path) -> None:
    path = tmp_path / "tickets.txt"
    path.write_text("全市已整合1228项政务服务事项。\n市民王建国来电，电话13812345678。\n", encoding="utf-8")
    r = run("scan", str(path), "--format", "json")
    assert r.exit_code == 0, r.output
    findings = json.loads(r.stdout)["findings"]
    assert [(f["line"], f["entity"], f["start"], f["end"]) for f in findings] == [
        (2, "PERSON", 2, 5), (2, "PHONE_NUMBER", 10, 21)]
    assert all(0 < f["score"] <= 1 for f in findings)


def test_table_format_is_readable(run: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text(CSV, encoding="utf-8")
    r = run("scan", str(tmp_path / "people.csv"))
    assert r.exit_code == 0 and "CN_RESIDENT_ID" in r.stdout and "dataset grade" in r.stdout


@pytest.mark.parametrize("name,content", [
    ("empty.csv", b""),
    ("empty.txt", b""),
    ("binary.txt", b"\x00\x01\x02PK\x03\x04" * 100),
    ("corrupt.parquet", b"PAR1 this is not parquet PAR1"),
    ("ragged.csv", b"a,b\n1,2\n3,4,5,6\n"),
    ("table.docx", b"whatever"),
])
def test_bad_input_is_one_line_and_nonzero(run: Callable[..., Result], tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    r = run("scan", str(tmp_path / name), "--format", "json")
    assert r.exit_code != 0
    assert "Traceback" not in r.output
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1


def test_huge_line_is_refused(run: Callable[..., Result], tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("a" * 10_500_000 + "\n", encoding="utf-8")
    r = run("scan", str(path))
    assert r.exit_code != 0 and r.stderr.startswith("error: ")


def test_http_scan_text_upload_and_inventory(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, _ = make_key("manager")
    r = client.post("/v1/scan", json={"text": "联系人：欧阳娜娜，电话13812345678"}, headers=auth(key))
    assert r.status_code == 200, r.text
    assert [f["entity"] for f in r.json()["findings"]] == ["PERSON", "PHONE_NUMBER"]
    up = client.post("/v1/scan", files={"file": ("people.csv", CSV.encode(), "text/csv")}, headers=auth(key))
    assert up.status_code == 200, up.text
    asset_id = up.json()["asset_id"]
    listed = client.get("/v1/assets", headers=auth(key)).json()["assets"]
    assert [a["id"] for a in listed] == [asset_id]
    one = client.get(f"/v1/assets/{asset_id}", headers=auth(key)).json()
    assert one["report"]["columns"][1]["entity"] == "CN_RESIDENT_ID"
    assert client.get("/v1/assets/nope", headers=auth(key)).status_code == 404


def test_http_bad_upload_is_4xx(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, _ = make_key("manager")
    r = client.post("/v1/scan", files={"file": ("x.parquet", b"garbage", "application/octet-stream")},
                    headers=auth(key))
    assert 400 <= r.status_code < 500
    assert client.post("/v1/scan", json={"nope": 1}, headers=auth(key)).status_code == 400


def test_http_consumer_may_not_scan(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, _ = make_key("consumer")
    assert client.post("/v1/scan", json={"text": "x"}, headers=auth(key)).status_code == 403


def test_every_scan_is_audited_without_values(container: Container, make_key: Callable[..., tuple[str, Principal]], tmp_path: Path) -> None:
    from quanguard.usecases import scan as uc

    _, manager = make_key("manager")
    _, consumer = make_key("consumer")
    path = tmp_path / "people.csv"
    path.write_text(CSV, encoding="utf-8")
    uc.scan_table(container, manager, str(path))
    uc.scan_text(container, manager, "联系人：欧阳娜娜，电话13812345678")
    with pytest.raises(Exception) as denied:
        uc.scan_text(container, consumer, "x")
    assert getattr(denied.value, "kind", None) == "forbidden"
    with container.session() as session:
        events = [e.columns for e in container.audit.store.iter_range(session)]
        bodies = " ".join(str(e.body) for e in container.audit.store.iter_range(session))
    scans = [e for e in events if e.get("action") == "scan"]
    assert [e.get("outcome") for e in scans] == ["success", "success", "failure"]  # ECS: denied is a failure
    assert "13812345678" not in bodies and "欧阳娜娜" not in bodies and "11010519491231002X" not in bodies


def test_http_batch_texts(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, _ = make_key("officer")
    r = client.post("/v1/scan", json={"texts": ["无个人信息", "电话13812345678"]}, headers=auth(key))
    assert r.status_code == 200, r.text
    assert [[f["entity"] for f in x["findings"]] for x in r.json()["results"]] == [[], ["PHONE_NUMBER"]]
    assert client.post("/v1/scan", json={"texts": [1, 2]}, headers=auth(key)).status_code == 400
