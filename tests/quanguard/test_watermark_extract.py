"""Issue 17: an extract of an ordinary table (no ID-named measures) gets a decision — it is
marked and delivered, or refused with a reason — never a 400 for "no column can carry"."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx2
import pyarrow as pa
import pyarrow.csv as pacsv
from fastapi.testclient import TestClient

from quanguard.auth import Principal
from quanguard.container import Container
from tests.conftest import auth, csv_bytes
from tests.watermark.attacks import issue_table


def _csv(table: pa.Table) -> bytes:
    return csv_bytes(table)


def _extract(client: TestClient, make_key: Callable[..., tuple[str, Principal]], table: pa.Table,
             name: str) -> httpx2.Response:
    prov = make_key("provider", org="市人社局")[0]
    bank = make_key("consumer", org="某银行")[0]
    r = client.post("/v1/exchange/datasets", headers=auth(prov),
                    data={"name": name, "key_column": table.column_names[0]},
                    files={"file": (f"{name}.csv", _csv(table), "text/csv")})
    assert r.status_code == 201, r.text
    return client.post("/v1/exchange/extract", headers=auth(bank), json={"dataset": name})


def test_extract_of_the_issue_table_is_marked(client: TestClient, make_key: Callable[..., tuple[str, Principal]], container: Container) -> None:
    r = _extract(client, make_key, issue_table(2000, seed=4), "payroll")
    if container.exchange.masker is None or container.exchange.watermarker is None:
        assert r.status_code == 403
        return
    assert r.status_code in (200, 403), r.text
    if r.status_code == 403:  # refused by policy for the grade: a decision, with its reason
        assert r.json()["error"]["message"]
        return
    with container.session() as s:
        copies = container.watermarker.copies(s, "payroll")
    assert copies and copies[0].plan.marked_columns


def test_extract_with_nothing_to_carry_a_mark_gets_canaries(client: TestClient, make_key: Callable[..., tuple[str, Principal]], container: Container) -> None:
    t = pa.table({"编号": [f"{370100000 + i}" for i in range(300)],
                  "街道": [["泉城路街道", "文东街道", "甸柳街道"][i % 3] for i in range(300)]})
    r = _extract(client, make_key, t, "streets")
    assert r.status_code in (200, 403), r.text
    if r.status_code == 200:
        rows = pacsv.read_csv(io.BytesIO(r.content)).num_rows
        assert rows == 300 + 3  # canary rows: the copy still names its recipient


def test_extract_that_cannot_be_marked_is_refused_with_a_reason(client: TestClient, make_key: Callable[..., tuple[str, Principal]], container: Container) -> None:
    """Every column would be marked and none is left to find rows by: a recorded refusal
    (403 with the reason), not a 400."""
    t = pa.table({"amount": [f"{1000 + 7.31 * i:.2f}" for i in range(400)]})
    r = _extract(client, make_key, t, "amounts")
    assert r.status_code in (200, 403), r.text
    if r.status_code == 403 and container.exchange.watermarker is not None \
            and container.exchange.masker is not None:
        assert "mark" in r.json()["error"]["message"] or "policy" in r.json()["error"]["message"]
