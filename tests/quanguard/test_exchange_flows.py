"""Exchange end to end: audit trail, L4 PSI approval, consent over HTTP, dataset sources."""

from __future__ import annotations

import base64
import io
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from exchange import PsiClient, PsiOutcome
from quanguard.auth import Principal
from quanguard.container import Container
from tests.conftest import auth
from tests.conftest import csv_bytes as table_csv
from tests.quanguard.test_exchange_api import BANK, PROV_ORG, members

_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def resident_id(i: int) -> str:
    """A GB 11643 resident id with a valid check character."""
    body = f"370102{19500101 + (i % 28) + 10000 * (i % 50):08d}{i % 1000:03d}"
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, _W)) % 11]


def csv_bytes(cols: dict[str, Any]) -> bytes:
    return table_csv(pa.table(cols))


@pytest.fixture
def keys(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> dict[str, str]:
    return {"prov": make_key("provider", org=PROV_ORG)[0], "bank": make_key("consumer", org=BANK)[0],
            "mgr": make_key("manager")[0]}


def _psi(client: TestClient, key: str, dataset: str, ids: list[str], local: PsiClient | None = None,
         **extra: object) -> tuple[int, Any, PsiOutcome | None]:
    terms = client.get(f"/v1/exchange/datasets/{dataset}/psi", headers=auth(key)).json()
    local = local or PsiClient(ids, reveal=terms["reveal"])
    body = {"dataset": dataset, "request": base64.b64encode(local.request()).decode(), **extra}
    r = client.post("/v1/exchange/psi", headers=auth(key), json=body)
    body = r.json()
    if r.status_code != 200:
        return r.status_code, body, None
    return 200, body, local.finish(base64.b64decode(body["setup"]), base64.b64decode(body["response"]))


def test_every_step_is_audited_without_raw_values(client: TestClient, keys: dict[str, str], container: Container, make_key: Callable[..., tuple[str, Principal]]) -> None:
    r = client.post("/v1/exchange/datasets", headers=auth(keys["prov"]),
                    data={"name": "members", "key_column": "member", "bounds": "income=0:30000"},
                    files={"file": ("m.csv", members(), "text/csv")})
    assert r.status_code == 201
    ok = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                     json={"dataset": "members", "agg": "count", "by": ["sex"]}).json()
    assert client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                       json={"dataset": "members", "agg": "count",
                             "where": {"member": "M000001"}}).status_code == 403
    client.get(f"/v1/exchange/jobs/{ok['job']}", headers=auth(keys["bank"]))
    assert client.get(f"/v1/exchange/jobs/{ok['job']}", headers=auth(keys["mgr"])).status_code == 200
    other = client.get(f"/v1/exchange/jobs/{ok['job']}", headers=auth(keys["prov"]))
    assert other.status_code == 200  # the provider of the dataset sees it
    lab = make_key("consumer", org="某研究所")[0]
    assert client.get(f"/v1/exchange/jobs/{ok['job']}", headers=auth(lab)).status_code == 404
    with container.session() as s:
        bodies = [e.body for e in container.audit.store.iter_range(s)]
    events = [json.loads(b) for b in bodies]
    flat = [(json.dumps(e, ensure_ascii=False)) for e in events]
    assert any("exchange.register" in f for f in flat)
    agg = [f for f in flat if "exchange.aggregate" in f]
    assert any('"success"' in f for f in agg) and any('"failure"' in f for f in agg)
    reads = [f for f in flat if "exchange.result" in f]
    assert any('"success"' in f for f in reads)
    assert any('"failure"' in f and ok["job"] in f and "某研究所" in f for f in reads)
    assert not any("M000001" in f or "M000002" in f for f in flat)


def test_l4_psi_waits_for_approval_then_reveals_count_only(client: TestClient, keys: dict[str, str]) -> None:
    ids = [resident_id(i) for i in range(300)]
    r = client.post("/v1/exchange/datasets", headers=auth(keys["prov"]),
                    data={"name": "residents", "key_column": "rid"},
                    files={"file": ("r.csv", csv_bytes({"rid": ids, "n": list(range(300))}), "text/csv")})
    assert r.status_code == 201 and r.json()["grade"] == "L4", r.text
    mine = ids[:5] + [resident_id(10_000 + i) for i in range(7)]
    local = PsiClient(mine, reveal="count")
    code, body, _ = _psi(client, keys["bank"], "residents", mine, local=local)
    assert code == 202 and body["status"] == "pending_approval"
    assert body["request"]["size"] == 12
    appr = client.post(f"/v1/exchange/jobs/{body['job']}/approve", headers=auth(keys["mgr"]),
                       json={"reason": "反欺诈核验"})
    assert appr.status_code == 200 and appr.json()["status"] == "approved"
    # the approved request runs: the client keeps its blinding key and sends no new set
    code, done, out = _psi(client, keys["bank"], "residents", mine, local=local,
                           job=body["job"], request=None)
    assert code == 200 and done["status"] == "done" and done["job"] == body["job"]
    assert out is not None
    assert out.intersection_size == 5 and out.matches is None  # policy: count only for L4
    code, _, _ = _psi(client, keys["bank"], "residents", mine, local=local, job=body["job"])
    assert code == 409  # an approval is used once


def test_consent_withdrawal_changes_psi_exactly(client: TestClient, keys: dict[str, str]) -> None:
    r = client.post("/v1/exchange/datasets", headers=auth(keys["prov"]),
                    data={"name": "members", "key_column": "member"},
                    files={"file": ("m.csv", members(), "text/csv")})
    assert r.status_code == 201
    mine = [f"M{i:06d}" for i in range(10)]
    r = client.post("/v1/exchange/datasets/members/consent", headers=auth(keys["prov"]),
                    json={"subjects": mine[:4], "purpose": "营销", "state": "withdrawn"})
    assert r.status_code == 200 and r.json()["subjects"] == 4
    assert client.post("/v1/exchange/datasets/members/consent", headers=auth(keys["bank"]),
                       json={"subjects": mine, "purpose": "营销", "state": "withdrawn"}).status_code == 403
    _, _, marketing = _psi(client, keys["bank"], "members", mine, purpose="营销")
    _, _, research = _psi(client, keys["bank"], "members", mine, purpose="科研")
    assert marketing is not None and research is not None
    assert marketing.intersection_size == 6 and research.intersection_size == 10
    assert set(marketing.matches or ()) == set(mine[4:])


def test_register_from_inbox_and_sql_and_refuse_outside(client: TestClient, keys: dict[str, str], container: Container, tmp_path: Path) -> None:
    inbox = container.settings.data_dir / "exchange-inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "m.csv").write_bytes(members(100))
    r = client.post("/v1/exchange/datasets", headers=auth(keys["prov"]),
                    data={"name": "from-inbox", "path": "m.csv"})
    assert r.status_code == 201 and r.json()["rows"] == 100
    (tmp_path / "secret.csv").write_text("a\n1\n")
    for bad in ("../secret.csv", str(tmp_path / "secret.csv"), "nope.csv"):
        r = client.post("/v1/exchange/datasets", headers=auth(keys["prov"]),
                        data={"name": "x", "path": bad})
        assert r.status_code == 400, (bad, r.text)
    db = tmp_path / "src.db"
    eng = create_engine(f"sqlite:///{db}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE people (member TEXT, district TEXT, income INTEGER)"))
        rnd = random.Random(1)
        for i in range(50):
            conn.execute(text("INSERT INTO people VALUES (:m, :d, :x)"),
                         {"m": f"M{i:06d}", "d": rnd.choice(["甲", "乙"]), "x": rnd.randint(0, 9)})
    eng.dispose()
    r = client.post("/v1/exchange/datasets", headers=auth(keys["prov"]),
                    data={"name": "from-sql", "sql_url": f"sqlite:///{db}", "sql_table": "people",
                          "key_column": "member", "bounds": "income=0:9"})
    assert r.status_code == 201, r.text
    income = next(c for c in r.json()["columns"] if c["name"] == "income")
    assert r.json()["rows"] == 50 and income["bounds"] == [0, 9]


def test_identifiers_keep_leading_zeros_and_parquet_uploads(client: TestClient, keys: dict[str, str], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    ids = [f"{i:08d}" for i in range(200)]
    r = client.post("/v1/exchange/datasets", headers=auth(keys["prov"]),
                    data={"name": "zeros", "key_column": "code", "bounds": "amount=0:100"},
                    files={"file": ("z.csv", csv_bytes({"code": ids, "amount": [i % 100 for i in range(200)]}),
                                    "text/csv")})
    assert r.status_code == 201, r.text
    _, _, out = _psi(client, keys["bank"], "zeros", ["00000007", "7"])
    assert out is not None
    assert out.intersection_size == 1 and out.matches == ("00000007",)
    buf = io.BytesIO()
    pq.write_table(pa.table({"code": ids, "amount": [float(i % 100) for i in range(200)]}), buf)
    r = client.post("/v1/exchange/datasets", headers=auth(keys["prov"]),
                    data={"name": "pq", "key_column": "code", "bounds": "amount=0:100"},
                    files={"file": ("z.parquet", buf.getvalue(), "application/octet-stream")})
    assert r.status_code == 201, r.text
    r = client.post("/v1/exchange/datasets", headers=auth(keys["prov"]),
                    data={"name": "bad", "bounds": "code=0:10"},
                    files={"file": ("b.csv", csv_bytes({"code": ["a", "b"]}), "text/csv")})
    assert r.status_code == 400 and "non-numeric" in r.json()["error"]["message"]


def test_large_tables_are_graded_on_a_spread_sample(container: Container) -> None:
    n = 30_000
    phones = [f"139{i:08d}" for i in range(n)]
    table = pa.table({"phone": phones, "k": [str(i % 7) for i in range(n)]})
    grading = container.exchange.scanner.grade_table(table)
    assert grading.grade == "L3" and "phone" in grading.identifiers and "k" not in grading.identifiers
