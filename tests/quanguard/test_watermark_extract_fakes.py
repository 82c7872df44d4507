"""Issue 17, attack first: an exchange extract whose phone numbers are made up by the
``fake`` operator carries marks in those fakes too — the masking plan tells the
watermark which columns it faked or hashed — so a leaker who keeps only the fake phone
column (key dropped, other carriers removed, a 30% subset) is still named."""

from __future__ import annotations

import io
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import yaml
from fastapi.testclient import TestClient

from quanguard.auth import Principal
from quanguard.config import Settings
from quanguard.container import Container
from tests.conftest import POLICY_DIR, auth, csv_bytes, make_settings

ROWS = 3000


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The shipped policies, with the 共享 profile making up phone numbers (``fake``) and
    consumers allowed to take extracts of L3 data (the shipped rules refuse them)."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policies)
    roles = policies / "roles.yaml"
    doc = yaml.safe_load(roles.read_text(encoding="utf-8"))
    doc["rules"] = [r for r in doc["rules"] if r["id"] != "consumer-no-l3-extract"]
    next(r for r in doc["rules"] if r["id"] == "consumer-extract-l2")["grades"] = ["L2", "L3"]
    roles.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    path = policies / "masking.yaml"
    text = path.read_text(encoding="utf-8")
    line = "      PHONE_NUMBER: {op: mask}           # 138****5678"
    assert line in text
    path.write_text(text.replace(line, "      PHONE_NUMBER: {op: fake}"), encoding="utf-8")
    return make_settings(tmp_path, policy_dir=policies)


def _people(n: int, seed: int = 5) -> pa.Table:
    r = np.random.default_rng(seed)
    surnames, given = list("张王李赵刘陈杨黄周吴"), list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平")
    phones = sorted({f"1{a}{b:08d}" for a, b in zip(r.choice([35, 38, 39, 58, 86, 88], 3 * n),
                                                      r.integers(0, 10**8, 3 * n), strict=True)})
    phones = [phones[i] for i in r.permutation(len(phones))[:n]]
    return pa.table({
        "编号": [f"{370100000 + i}" for i in range(n)],
        "姓名": [surnames[a] + given[b] + given[c] for a, b, c in
                 zip(r.integers(0, 10, n), r.integers(0, 20, n), r.integers(0, 20, n),
                     strict=True)],
        "手机号": phones,
        "月收入": [f"{v:.2f}" for v in np.exp(r.normal(8.8, 0.5, n))],
        "街道": [["泉城路街道", "文东街道", "甸柳街道", "姚家街道"][i] for i in r.integers(0, 4, n)],
    })


def _csv(table: pa.Table) -> bytes:
    return csv_bytes(table)


def test_fake_phone_column_alone_names_the_recipient(client: TestClient, make_key: Callable[..., tuple[str, Principal]], container: Container, tmp_path: Path) -> None:
    prov = make_key("provider", org="市人社局")[0]
    bank = make_key("consumer", org="某银行")[0]
    source = _people(ROWS)
    r = client.post("/v1/exchange/datasets", headers=auth(prov),
                    data={"name": "residents", "key_column": "编号"},
                    files={"file": ("residents.csv", _csv(source), "text/csv")})
    assert r.status_code == 201, r.text
    r = client.post("/v1/exchange/extract", headers=auth(bank), json={"dataset": "residents"})
    assert r.status_code == 200, r.text
    extract = pacsv.read_csv(io.BytesIO(r.content), convert_options=pacsv.ConvertOptions(
        column_types={n: pa.string() for n in source.column_names}))
    phones = extract.column("手机号").to_pylist()
    assert not set(phones) & set(source.column("手机号").to_pylist())  # made up, not masked
    assert all(len(p) == 11 and p.isdigit() for p in phones)

    with container.session() as s:
        (copy,) = container.watermarker.copies(s, "residents")
    kinds = {c.name: c.kind for c in copy.plan.carriers}
    assert kinds.get("手机号") == "pseudonym"  # stored with the copy: detect needs no hint

    # The leak: the fake phones and whatever is not a carrier, no key, 30% of the rows.
    rng = random.Random(3)
    keep = rng.sample(range(extract.num_rows), extract.num_rows * 3 // 10)
    others = [c for c in copy.plan.marked_columns if c != "手机号"]
    leaked = extract.take(pa.array(keep)).drop_columns(["编号", *others])
    assert leaked.column_names and "手机号" in leaked.column_names
    path = tmp_path / "found.csv"
    path.write_bytes(_csv(leaked))
    manager = make_key("manager")[0]
    r = client.post("/v1/watermark/detect", headers=auth(manager), data={"dataset": "residents"},
                    files={"file": ("found.csv", path.read_bytes(), "text/csv")})
    assert r.status_code == 200, r.text
    v = r.json()
    assert (v["verdict"], v["recipient"]) == ("match", copy.recipient), v["message"]
    assert v["p_value"] < 1e-6
    assert [c["recipient"] for c in v["candidates"] if c["accused"]] == [copy.recipient]
