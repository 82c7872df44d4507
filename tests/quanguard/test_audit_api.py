from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.checkpoint import Checkpoint
from monitor.trail import verify_proof_document
from tests.conftest import auth


def line(i: int = 0, **kw: Any) -> str:
    obj = {
        "ts": (datetime.now(UTC) - timedelta(minutes=30) + timedelta(seconds=i)).isoformat(),
        "actor": {"id": f"user-{i % 3}", "role": "consumer", "org": "市卫健委"},
        "action": "query", "dataset": "户籍人口", "fields": ["姓名"], "grade": "L2",
        "rows": 5, "purpose": f"核验 {i}", "decision": "allow", "source_ip": "10.0.0.9",
    }
    obj.update(kw)
    return json.dumps(obj, ensure_ascii=False)


@pytest.fixture
def keys(make_key: Callable[..., tuple[str, Any]]) -> dict[str, str]:
    return {role: make_key(role)[0] for role in ("reporter", "auditor", "consumer", "manager")}


def test_post_one_event(client: Any, keys: dict[str, str]) -> None:
    r = client.post("/v1/events", content=line(), headers=auth(keys["reporter"]))
    assert r.status_code == 201, r.text
    assert r.json()["seq"] >= 1


def test_post_one_bad_event(client: Any, keys: dict[str, str]) -> None:
    r = client.post("/v1/events", content=line(action="teleport"), headers=auth(keys["reporter"]))
    assert r.status_code == 400
    assert "unknown action" in r.json()["error"]["message"]


def test_only_reporters_post(client: Any, keys: dict[str, str]) -> None:
    r = client.post("/v1/events", content=line(), headers=auth(keys["consumer"]))
    assert r.status_code == 403
    assert client.post("/v1/events", content=line()).status_code == 401


def test_batch_keeps_valid_lines(client: Any, keys: dict[str, str]) -> None:
    body = "\n".join([line(1), "{bad", line(2, reporter="forged"), line(3), ""])
    r = client.post("/v1/events/batch", content=body, headers=auth(keys["reporter"]))
    assert r.status_code == 207, r.text
    doc = r.json()
    assert doc["accepted"] == 2 and doc["rejected"] == 2
    assert [e["line"] for e in doc["errors"]] == [2, 3]
    assert "authenticated caller" in doc["errors"][1]["error"]


def test_batch_with_a_time_outside_utc_keeps_its_other_lines(client: Any,
                                                            keys: dict[str, str]) -> None:
    # 0001-01-01T00:30+01:00 exists in its zone but is before the first UTC instant (and
    # 9999-12-31T23:59-01:00 after the last): each is that line's error, never a 500
    # that drops the batch with the lines around it.
    body = "\n".join([line(1), line(2, ts="0001-01-01T00:30:00+01:00"),
                      line(3, ts="9999-12-31T23:59:59-01:00"), line(4)])
    r = client.post("/v1/events/batch", content=body, headers=auth(keys["reporter"]))
    assert r.status_code == 207, r.text
    doc = r.json()
    assert doc["accepted"] == 2 and [e["line"] for e in doc["errors"]] == [2, 3]
    assert all("out of range" in e["error"] for e in doc["errors"])


def test_batch_too_large(client: Any, keys: dict[str, str]) -> None:
    body = "\n".join([line(1)] * 10_001)
    r = client.post("/v1/events/batch", content=body, headers=auth(keys["reporter"]))
    assert r.status_code == 413
    s = client.get("/v1/audit/status", headers=auth(keys["auditor"])).json()
    assert s["head"]["seq"] >= 0  # nothing of the batch stored:
    found = client.get("/v1/audit/search", params={"action": "query"},
                       headers=auth(keys["auditor"])).json()
    assert found["total"] == 0


def test_search_filters_aggs_and_is_itself_recorded(client: Any, keys: dict[str, str]) -> None:
    body = "\n".join(line(i, decision="deny" if i % 4 == 0 else "allow") for i in range(12))
    assert client.post("/v1/events/batch", content=body,
                       headers=auth(keys["reporter"])).status_code == 200
    r = client.get("/v1/audit/search", params={"action": "query", "effect": "deny",
                                               "agg": ["by_actor", "per_day"], "sort": "seq"},
                   headers=auth(keys["auditor"]))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["total"] == 3 and len(doc["hits"]) == 3
    assert all(h["audit"]["effect"] == "deny" for h in doc["hits"])
    assert sum(b["count"] for b in doc["aggs"]["by_actor"]) == 3
    assert doc["aggs"]["per_day"][0]["key"].endswith("+08:00")
    r = client.get("/v1/audit/search", params={"action": "audit_search"},
                   headers=auth(keys["manager"]))
    searches = r.json()["hits"]
    assert searches and searches[-1]["audit"]["rows"] == 3
    assert searches[-1]["labels"]["effect"] == "deny"


def test_search_roles(client: Any, keys: dict[str, str]) -> None:
    assert client.get("/v1/audit/search", headers=auth(keys["consumer"])).status_code == 403
    assert client.get("/v1/audit/search", headers=auth(keys["reporter"])).status_code == 403


def test_bad_search_params(client: Any, keys: dict[str, str]) -> None:
    h = auth(keys["auditor"])
    assert client.get("/v1/audit/search", params={"sort": "purpose"}, headers=h).status_code == 400
    assert client.get("/v1/audit/search", params={"since": "x"}, headers=h).status_code == 400
    assert client.get("/v1/audit/search", params={"agg": "nope"}, headers=h).status_code == 400


def test_checkpoint_proof_status(client: Any, keys: dict[str, str]) -> None:
    client.post("/v1/events/batch", content="\n".join(line(i) for i in range(7)),
                headers=auth(keys["reporter"]))
    h = auth(keys["auditor"])
    cp = client.post("/v1/audit/checkpoint", headers=h)
    assert cp.status_code == 200, cp.text
    checkpoint = Checkpoint.from_dict(cp.json())
    proof = client.get("/v1/audit/proof/3", headers=h).json()
    verify_proof_document(proof, checkpoint)
    status = client.get("/v1/audit/status", headers=h).json()
    assert status["last_checkpoint"]["tree_size"] >= checkpoint.tree_size
    assert status["last_checkpoint"]["exported"]
    assert client.get("/v1/audit/proof/99999", headers=h).status_code == 404


def test_alerts_flow(client: Any, keys: dict[str, str]) -> None:
    same = {"id": "prober", "role": "consumer", "org": "某公司"}
    deny = "\n".join(line(i, decision="deny", actor=same) for i in range(6))
    client.post("/v1/events/batch", content=deny, headers=auth(keys["reporter"]))
    h = auth(keys["auditor"])
    alerts = client.get("/v1/alerts", params={"status": "open"}, headers=h).json()["alerts"]
    burst = [a for a in alerts if a["rule"] == "denial-burst"]
    assert burst, alerts
    aid = burst[0]["id"]
    r = client.patch(f"/v1/alerts/{aid}", json={"status": "acknowledged", "note": "看一下"},
                     headers=h)
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    r = client.patch(f"/v1/alerts/{aid}", json={"status": "closed", "note": "已核实"}, headers=h)
    assert r.json()["note"] == "已核实"
    assert client.patch(f"/v1/alerts/{aid}", json={"status": "open"}, headers=h
                        ).status_code == 409
    assert client.patch("/v1/alerts/nope", json={"status": "closed"}, headers=h
                        ).status_code == 404
    assert client.get("/v1/alerts", headers=auth(keys["consumer"])).status_code == 403


def test_consistency_route(client: Any, keys: dict[str, str]) -> None:
    from monitor.trail import verify_consistency_document

    h = auth(keys["auditor"])
    client.post("/v1/events/batch", content="\n".join(line(i) for i in range(5)),
                headers=auth(keys["reporter"]))
    old = Checkpoint.from_dict(client.post("/v1/audit/checkpoint", headers=h).json())
    client.post("/v1/events/batch", content="\n".join(line(i) for i in range(5, 9)),
                headers=auth(keys["reporter"]))
    doc = client.get("/v1/audit/consistency", params={"old_size": old.tree_size}, headers=h)
    assert doc.status_code == 200, doc.text
    new = verify_consistency_document(doc.json(), old)
    assert new.tree_size > old.tree_size
