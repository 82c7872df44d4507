"""POST /v1/watermark/embed and /v1/watermark/detect: roles, policy, registry, audit, errors."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from fastapi.testclient import TestClient

from quanguard.auth import Principal
from quanguard.container import Container
from tests.conftest import auth, csv_bytes
from tests.watermark.attacks import keep_fraction, sample_table


def _csv(table: pa.Table) -> bytes:
    return csv_bytes(table)


def _read_csv(data: bytes) -> pa.Table:
    names = data.split(b"\n", 1)[0].decode().replace('"', "").split(",")
    return pacsv.read_csv(io.BytesIO(data), convert_options=pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names}))


def _embed(client: TestClient, key: str, data: bytes, recipient: str, name: str = "people.csv",
           **fields: Any) -> httpx2.Response:
    return client.post("/v1/watermark/embed", headers=auth(key),
                       files={"file": (name, data)},
                       data={"recipient": recipient, **fields})


def _detect(client: TestClient, key: str, data: bytes, name: str = "suspect.csv",
            **fields: Any) -> httpx2.Response:
    return client.post("/v1/watermark/detect", headers=auth(key),
                       files={"file": (name, data)}, data=fields)


def _audit(container: Container) -> list[dict[str, Any]]:
    with container.session() as session:
        return [json.loads(e.body) for e in container.audit.store.iter_range(session)]


def test_embed_then_trace_the_leak(client: TestClient, container: Container, make_key: Callable[..., tuple[str, Principal]]) -> None:
    manager, _ = make_key("manager")
    auditor, _ = make_key("auditor")
    table = sample_table(3000, seed=21)
    copies = {}
    for who in ("市人社局", "市卫健委", "市公安局"):
        r = _embed(client, manager, _csv(table), who, dataset="people")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        report = json.loads(r.headers["x-watermark-report"])
        assert report["copy_id"] == r.headers["x-watermark-copy-id"]
        assert report["marked_cells"] > 0 and report["rows"] == 3000
        assert all(c["relative_shift"] is None or c["relative_shift"] < 1e-3
                   for c in report["columns"].values())
        copies[who] = _read_csv(r.content)
    leaked = keep_fraction(copies["市卫健委"], __import__("random").Random(3), 0.2)
    r = _detect(client, auditor, _csv(leaked), dataset="people")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verdict"] == "match" and body["recipient"] == "市卫健委"
    assert body["p_value"] < 1e-6
    assert body["evidence"]["rows_seen"] == 600
    assert body["evidence"]["recipients_tested"] == 3
    assert [c["recipient"] for c in body["candidates"] if c["accused"]] == ["市卫健委"]
    r = _detect(client, auditor, _csv(table))
    assert r.json()["verdict"] == "none"
    docs = _audit(container)
    text = json.dumps(docs, ensure_ascii=False)
    assert text.count("watermark_embed") >= 3 and text.count("watermark_detect") >= 2
    # the audit trail holds names, counts and digests, never values
    for v in table.column("phone").to_pylist()[:50] + table.column("income").to_pylist()[:50]:
        assert v not in text


@pytest.mark.parametrize("role,path", [
    ("consumer", "/v1/watermark/embed"), ("auditor", "/v1/watermark/embed"),
    ("consumer", "/v1/watermark/detect"), ("reporter", "/v1/watermark/detect"),
])
def test_roles(client: TestClient, make_key: Callable[..., tuple[str, Principal]], role: str, path: str) -> None:
    key, _ = make_key(role)
    r = client.post(path, headers=auth(key), files={"file": ("a.csv", b"x\n1\n")},
                    data={"recipient": "x"})
    assert r.status_code == 403
    assert r.json()["error"]["kind"] == "forbidden"


def test_bad_input_gives_clear_errors(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> None:
    manager, _ = make_key("manager")
    auditor, _ = make_key("auditor")
    r = _detect(client, auditor, _csv(sample_table(100)))
    assert r.status_code == 404 and "no watermarked copy" in r.json()["error"]["message"]
    small = _embed(client, manager, _csv(sample_table(30)), "x", dataset="tiny")
    assert small.status_code == 400
    assert "too small" in small.json()["error"]["message"]
    assert "more" in small.json()["error"]["message"]
    ok = _embed(client, manager, _csv(sample_table(2000)), "x", dataset="people")
    assert ok.status_code == 200
    r = _detect(client, auditor, _csv(sample_table(100)), dataset="nope")
    assert r.status_code == 404 and "people" in r.json()["error"]["message"]
    r = _detect(client, auditor, b"a,b\n1,2\n", dataset="people")
    assert r.status_code == 400 and "none of the marked columns" in r.json()["error"]["message"]
    r = _embed(client, manager, _csv(sample_table(100)), "")
    assert r.status_code == 400
    r = _embed(client, manager, b"x", "r", name="a.docx")
    assert r.status_code == 400 and "unsupported" in r.json()["error"]["message"]
    r = _detect(client, auditor, _csv(sample_table(100)), alpha="2")
    assert r.status_code == 400


def test_wrong_key_is_reported_not_a_verdict(client: TestClient, container: Container, make_key: Callable[..., tuple[str, Principal]]) -> None:
    manager, _ = make_key("manager")
    auditor, _ = make_key("auditor")
    r = _embed(client, manager, _csv(sample_table(2000)), "x", dataset="people")
    assert r.status_code == 200
    key_file = container.settings.key_dir / "watermark.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    key_file.write_bytes(b"\x01" * 32)
    container.watermarker.__dict__.pop("secret", None)
    r = _detect(client, auditor, r.content, dataset="people")
    assert r.status_code == 409
    assert "key mismatch" in r.json()["error"]["message"]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ".xlsx", ".tsv"])
def test_every_table_format(client: TestClient, make_key: Callable[..., tuple[str, Principal]], tmp_path: Path, suffix: str) -> None:
    from desensitize.tableio import open_writer, read_table

    manager, _ = make_key("manager")
    auditor, _ = make_key("auditor")
    src = tmp_path / f"people{suffix}"
    with open_writer(src) as w:
        w.write(sample_table(1500, seed=4))
    r = _embed(client, manager, src.read_bytes(), "市民政局", name=src.name)
    assert r.status_code == 200, r.text
    marked = tmp_path / f"marked{suffix}"
    marked.write_bytes(r.content)
    assert read_table(marked).num_rows == 1500
    r = _detect(client, auditor, marked.read_bytes(), name=marked.name)
    assert r.status_code == 200 and r.json()["recipient"] == "市民政局"



def test_a_body_that_is_not_multipart_is_415_naming_multipart(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> None:
    manager, _ = make_key("manager")
    for path in ("/v1/watermark/embed", "/v1/watermark/detect"):
        r = client.post(path, json={"recipient": "x"}, headers={"Authorization": f"Bearer {manager}"})
        assert r.status_code == 415, r.text
        err = r.json()["error"]
        assert err["kind"] == "unsupported_media" and err["accepted"] == ["multipart/form-data"]


def test_pseudonym_columns_carry_marks_and_detect_needs_no_hint(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> None:
    """A file masked elsewhere: its fake phone numbers and bank cards carry marks when
    named; the plan keeps them, so a leak of the fake phones alone (no key, 30% of the
    rows) is traced without naming anything."""
    import random

    from tests.watermark.attacks import extract_table

    manager, _ = make_key("manager")
    auditor, _ = make_key("auditor")
    table = extract_table(3000, seed=8)
    r = _embed(client, manager, _csv(table), "市医保局", dataset="claims",
               pseudonym_columns=["联系电话", "银行卡"])
    assert r.status_code == 200, r.text
    report = json.loads(r.headers["x-watermark-report"])
    assert report["columns"]["联系电话"]["marked"] > 0
    assert report["columns"]["银行卡"]["marked"] > 0
    marked = _read_csv(r.content)
    keep = random.Random(2).sample(range(3000), 900)
    leaked = marked.take(pa.array(keep)).select(["联系电话", "交易日期"])
    r = _detect(client, auditor, _csv(leaked), dataset="claims")
    assert r.status_code == 200, r.text
    v = r.json()
    assert (v["verdict"], v["recipient"]) == ("match", "市医保局") and v["p_value"] < 1e-6


@pytest.mark.parametrize("names,message", [
    (["电话"], "not in the table"),
    (["消费金额"], "named as pseudonyms"),
    (["编号"], "row key"),
])
def test_bad_pseudonym_columns_are_a_400(client: TestClient, make_key: Callable[..., tuple[str, Principal]], names: list[str], message: str) -> None:
    from tests.watermark.attacks import extract_table

    manager, _ = make_key("manager")
    fields: dict[str, Any] = {"pseudonym_columns": names}
    if names == ["编号"]:
        fields["key_column"] = "编号"
    r = _embed(client, manager, _csv(extract_table(600, seed=8)), "x", dataset="claims",
               **fields)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"] and r.json()["error"]["request_id"]
