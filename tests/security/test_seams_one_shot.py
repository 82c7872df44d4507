"""Review rvF — a one-shot approval used twice by racing calls.

Attack (a consumer with one approved L4 PSI job): send the approved request several
times at once. Each call read the job as ``approved``, answered, and then set it
``done`` — so on PostgreSQL (read committed) every racing call that read the job before
the first one committed got its own answer and its own receipt from a single approval.
Likewise two managers approving one pending aggregate at once each ran it (PostgreSQL):
two results, two receipts, the consumer's ε charged twice.

Guarantee: whatever the interleaving, exactly one call runs the approved request; the
others are refused (409) and recorded, and the trail holds exactly one successful
``exchange.psi`` (or ``exchange.aggregate``) for the job.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from exchange import PsiClient
from quanguard.auth import Principal
from quanguard.container import Container
from tests.conftest import auth
from tests.quanguard.test_exchange_flows import csv_bytes, resident_id
from tests.security.test_seams_exchange import events, register, send_psi

PROV, BANK = "市卫健委", "某银行"


@pytest.fixture
def container(any_container: Container) -> Container:
    """conftest's ``any_container``: the races run on SQLite and on PostgreSQL."""
    return any_container


@pytest.fixture
def keys(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> dict[str, str]:
    return {"prov": make_key("provider", org=PROV)[0], "bank": make_key("consumer", org=BANK)[0],
            "mgr": make_key("manager")[0]}


def test_racing_uses_of_one_psi_approval_run_it_once(client: TestClient, keys: dict[str, str], container: Container) -> None:
    n = 3000
    ids = [resident_id(i) for i in range(n)]
    r = register(client, keys["prov"], "residents", csv_bytes({"rid": ids, "n": list(range(n))}),
                 key_column="rid")
    assert r.status_code == 201 and r.json()["grade"] == "L4", r.text
    local = PsiClient(ids[:20], reveal="count")
    asked = local.request()
    r = send_psi(client, keys["bank"], "residents", asked, purpose="核验")
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    assert client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(keys["mgr"]),
                       json={"reason": "核验 20 人"}).status_code == 200
    racers = 4
    gate = threading.Barrier(racers)
    codes: list[int] = []

    def use() -> None:
        gate.wait()
        codes.append(send_psi(client, keys["bank"], "residents", asked, job=job).status_code)

    threads = [threading.Thread(target=use) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] + [409] * (racers - 1), codes
    psi = [e for e in events(container) if e["event"]["action"] == "exchange.psi"
           and job in json.dumps(e, ensure_ascii=False)]
    answered = [e for e in psi if e["audit"].get("result_digest") and e["labels"].get("job") == job]
    refused = [e for e in psi if e["event"]["outcome"] == "failure"]
    assert len(answered) == 1 and len(refused) == racers - 1, psi
    assert client.get(f"/v1/exchange/jobs/{job}", headers=auth(keys["bank"])).json()["status"] == "done"


def test_racing_approvals_of_one_aggregate_run_it_once(client: TestClient, keys: dict[str, str], make_key: Callable[..., tuple[str, Principal]], container: Container) -> None:
    """Two managers approve the same pending aggregate at once: it runs (and is charged)
    once; the other approval is a recorded 409."""
    n = 400
    r = register(client, keys["prov"], "residents",
                 csv_bytes({"rid": [resident_id(i) for i in range(n)], "n": list(range(n))}),
                 key_column="rid")
    assert r.status_code == 201 and r.json()["grade"] == "L4", r.text
    r = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                    json={"dataset": "residents", "agg": "count", "epsilon": 0.25, "purpose": "统计"})
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    managers = [keys["mgr"], make_key("manager")[0], make_key("manager")[0]]
    gate = threading.Barrier(len(managers))
    codes: list[int] = []

    def approve(key: str) -> None:
        gate.wait()
        codes.append(client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(key),
                                 json={"reason": "ok"}).status_code)

    threads = [threading.Thread(target=approve, args=(k,)) for k in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] + [409] * (len(managers) - 1), codes
    spent = client.get("/v1/exchange/datasets/residents/budget", headers=auth(keys["bank"])).json()
    assert spent["epsilon_spent"] == pytest.approx(0.25), spent
    ran = [e for e in events(container) if e["event"]["action"] == "exchange.aggregate"
           and e["labels"].get("job") == job and e["audit"].get("result_digest")]
    assert len(ran) == 1, ran
