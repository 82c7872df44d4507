"""An extract that was allowed and then breaks while it is masked or marked (a fault in
the watermark, not a refusal) still leaves its ``exchange.extract`` event: the attempt is
in the audit trail, with the error's effect."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from quanguard.auth import Principal
from quanguard.container import Container
from tests.conftest import auth, csv_bytes


def _events(container: Container) -> list[dict[str, Any]]:
    with container.session() as session:
        docs = [json.loads(e.body) for e in container.audit.store.iter_range(session)]
    return [d for d in docs if d["event"]["action"] == "exchange.extract"]


def test_a_fault_while_marking_an_allowed_extract_is_recorded(
        client: TestClient, make_key: Callable[..., tuple[str, Principal]], container: Container,
        monkeypatch: pytest.MonkeyPatch) -> None:
    t = pa.table({"编号": [f"{370100000 + i}" for i in range(300)],
                  "街道": [["泉城路街道", "文东街道", "甸柳街道"][i % 3] for i in range(300)]})
    prov = make_key("provider", org="市人社局")[0]
    bank = make_key("consumer", org="某银行")[0]
    r = client.post("/v1/exchange/datasets", headers=auth(prov), data={"name": "streets", "key_column": "编号"},
                    files={"file": ("streets.csv", csv_bytes(t), "text/csv")})
    assert r.status_code == 201, r.text

    def broken(*_: object, **__: object) -> pa.Table:
        raise RuntimeError("watermark registry unreachable")

    monkeypatch.setattr(container.watermarker, "embed_table", broken)
    r = client.post("/v1/exchange/extract", headers=auth(bank), json={"dataset": "streets"})
    assert r.status_code == 500, r.text
    events = _events(container)
    assert events, "the allowed extract that broke left no event"
    assert events[-1]["event"]["outcome"] == "failure"
    assert "unreachable" in json.dumps(events[-1], ensure_ascii=False)
