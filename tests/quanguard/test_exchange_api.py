"""The exchange over HTTP with the real policy set, scanner and store."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable

import httpx2
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from exchange import PsiClient, verify_receipt
from quanguard.auth import Principal
from quanguard.container import Container
from tests.conftest import auth, csv_bytes

PROV_ORG, BANK, LAB = "市卫健委", "某银行", "某研究所"


def members(n: int = 600, phone: bool = False, seed: int = 3) -> bytes:
    rnd = random.Random(seed)
    cols = {
        "member": [f"M{i:06d}" for i in range(n)],
        "district": [rnd.choice(["历下区", "市中区", "槐荫区"]) for _ in range(n - 1)] + ["莱芜区"],
        "sex": [rnd.choice("男女") for _ in range(n)],
        "income": [rnd.randint(0, 30_000) for _ in range(n)],
    }
    if phone:
        cols["phone"] = [f"13{rnd.randint(0, 999_999_999):09d}" for _ in range(n)]
    return csv_bytes(pa.table(cols))


@pytest.fixture
def world(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> dict[str, str]:
    keys = {
        "prov": make_key("provider", org=PROV_ORG)[0], "bank": make_key("consumer", org=BANK)[0],
        "lab": make_key("consumer", org=LAB)[0], "mgr": make_key("manager", org="市大数据局")[0],
    }
    r = client.post("/v1/exchange/datasets", headers=auth(keys["prov"]),
                    data={"name": "members", "key_column": "member", "bounds": "income=0:30000"},
                    files={"file": ("members.csv", members(), "text/csv")})
    assert r.status_code == 201, r.text
    return keys


def agg(client: TestClient, key: str, **body: object) -> httpx2.Response:
    return client.post("/v1/exchange/aggregate", headers=auth(key), json={"dataset": "members", **body})


def test_register_grades_and_hides_rows(client: TestClient, world: dict[str, str]) -> None:
    meta = client.get("/v1/exchange/datasets/members", headers=auth(world["bank"])).json()
    assert meta["grade"] == "L2" and meta["rows"] == 600 and meta["key_columns"] == ["member"]
    assert {c["name"] for c in meta["columns"]} == {"member", "district", "sex", "income"}
    assert next(c for c in meta["columns"] if c["name"] == "income")["bounds"] == [0, 30000]
    r = client.post("/v1/exchange/datasets", headers=auth(world["bank"]),
                    data={"name": "x"}, files={"file": ("x.csv", members(20), "text/csv")})
    assert r.status_code == 403  # consumers do not publish


def test_aggregate_result_receipt_and_budget(client: TestClient, world: dict[str, str]) -> None:
    r = agg(client, world["bank"], agg="mean", column="income", by=["sex"], epsilon=1.0)
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["status"] == "done" and {g["group"]["sex"] for g in job["result"]} == {"男", "女"}
    assert job["epsilon_spent"] == pytest.approx(1.0) and job["budget_left"] == pytest.approx(1.0)  # L2: cap 2.0
    key = bytes.fromhex(client.get("/v1/exchange/receipt-key", headers=auth(world["bank"])).json()["public_key"])
    verify_receipt(job["receipt"], result=job["result"], public_key=key)
    again = client.get(f"/v1/exchange/jobs/{job['job']}", headers=auth(world["bank"])).json()
    assert again["result"] == job["result"]
    b = client.get("/v1/exchange/datasets/members/budget", headers=auth(world["bank"])).json()
    assert b["epsilon_spent"] == pytest.approx(1.0) and b["epsilon_cap"] == 2.0


@pytest.mark.parametrize("body", [
    {"agg": "count", "where": {"member": "M000007"}},
    {"agg": "count", "by": ["member"]},
    {"agg": "count", "epsilon": 50},
])
def test_attacks_refused_with_reason(client: TestClient, world: dict[str, str], body: dict[str, object]) -> None:
    r = agg(client, world["bank"], **body)
    assert r.status_code == 403 and r.json()["error"]["message"]


def test_attack_one_person_district_suppressed(client: TestClient, world: dict[str, str]) -> None:
    job = agg(client, world["bank"], agg="count", by=["district"], epsilon=1.0).json()
    assert "莱芜区" not in {g["group"]["district"] for g in job["result"]}
    assert isinstance(job["suppressed_groups"], int) and job["suppressed_groups"] >= 0


def test_attack_repeating_until_budget_is_spent(client: TestClient, world: dict[str, str]) -> None:
    codes = [agg(client, world["bank"], agg="count", epsilon=0.6).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 403, 403]
    assert agg(client, world["lab"], agg="count", epsilon=0.6).status_code == 200


def test_attack_no_endpoint_returns_rows(client: TestClient, world: dict[str, str]) -> None:
    bank = auth(world["bank"])
    job = agg(client, world["bank"], agg="count", by=["sex"], epsilon=0.5).json()
    bodies = [client.get(p, headers=bank).text for p in (
        "/v1/exchange/datasets", "/v1/exchange/datasets/members", "/v1/exchange/jobs",
        f"/v1/exchange/jobs/{job['job']}", "/v1/exchange/datasets/members/psi",
        "/v1/exchange/datasets/members/budget")]
    bodies.append(agg(client, world["bank"], agg="rows").text)
    for text in bodies:
        assert "M00000" not in text and "M00012" not in text
    # an extract is the one way out, and only where policy allows it for the grade (L1
    # here, masked by the policy's profile and marked); an L3 dataset's rows never leave
    r = client.post("/v1/exchange/datasets", headers=auth(world["prov"]),
                    data={"name": "contacts", "key_column": "member"},
                    files={"file": ("c.csv", members(phone=True), "text/csv")})
    assert r.status_code == 201 and r.json()["grade"] == "L3"
    r = client.post("/v1/exchange/extract", headers=bank, json={"dataset": "contacts"})
    assert r.status_code == 403 and "L3" in r.json()["error"]["message"]
    r = client.post("/v1/exchange/aggregate", headers=bank,
                    json={"dataset": "contacts", "agg": "count", "by": ["phone"]})
    assert r.status_code == 403


def test_attack_other_consumer_cannot_read_jobs(client: TestClient, world: dict[str, str]) -> None:
    job = agg(client, world["bank"], agg="count", epsilon=0.5).json()
    r = client.get(f"/v1/exchange/jobs/{job['job']}", headers=auth(world["lab"]))
    assert r.status_code == 404
    assert client.get("/v1/exchange/jobs", headers=auth(world["lab"])).json() == []
    mine = client.get("/v1/exchange/jobs", headers=auth(world["bank"])).json()
    assert [j["job"] for j in mine] == [job["job"]]
    prov = client.get("/v1/exchange/jobs", headers=auth(world["prov"])).json()
    assert [j["job"] for j in prov] == [job["job"]]


def test_l3_aggregate_waits_for_manager(client: TestClient, world: dict[str, str]) -> None:
    r = client.post("/v1/exchange/datasets", headers=auth(world["prov"]),
                    data={"name": "contacts", "key_column": "member"},
                    files={"file": ("c.csv", members(phone=True), "text/csv")})
    assert r.status_code == 201 and r.json()["grade"] == "L3"
    r = client.post("/v1/exchange/aggregate", headers=auth(world["bank"]),
                    json={"dataset": "contacts", "agg": "count", "by": ["sex"], "epsilon": 0.5})
    assert r.status_code == 202 and r.json()["status"] == "pending_approval"
    jid = r.json()["job"]
    assert client.post(f"/v1/exchange/jobs/{jid}/approve", headers=auth(world["bank"]),
                       json={"reason": "me"}).status_code == 403
    r = client.post(f"/v1/exchange/jobs/{jid}/approve", headers=auth(world["mgr"]),
                    json={"reason": "普惠金融风控建模"})
    assert r.status_code == 200 and r.json()["status"] == "done", r.text
    got = client.get(f"/v1/exchange/jobs/{jid}", headers=auth(world["bank"])).json()
    assert got["decided_by"] and len(got["result"]) == 2 and got["receipt"]["job"] == jid
    assert client.post(f"/v1/exchange/jobs/{jid}/reject", headers=auth(world["mgr"]),
                       json={"reason": "late"}).status_code == 409


def test_psi_over_http(client: TestClient, world: dict[str, str]) -> None:
    terms = client.get("/v1/exchange/datasets/members/psi", headers=auth(world["bank"])).json()
    assert terms["reveal"] == "matches"  # L1/L2 policy
    mine = ["M000003", "M000010", "X1", "X2"]
    pc = PsiClient(mine, reveal=terms["reveal"])
    r = client.post("/v1/exchange/psi", headers=auth(world["bank"]),
                    json={"dataset": "members", "request": base64.b64encode(pc.request()).decode()})
    assert r.status_code == 200, r.text
    body = r.json()
    out = pc.finish(base64.b64decode(body["setup"]), base64.b64decode(body["response"]))
    assert out.intersection_size == 2 and set(out.matches or ()) == {"M000003", "M000010"}
    assert body["receipt"]["kind"] == "psi"


def test_extract_is_masked_watermarked_and_traceable(client: TestClient, world: dict[str, str], container: Container) -> None:
    r = client.post("/v1/exchange/extract", headers=auth(world["bank"]), json={"dataset": "members"})
    if container.exchange.masker is None or container.exchange.watermarker is None:
        assert r.status_code == 403 and "not available" in r.json()["error"]["message"]
        return
    assert r.status_code == 200, r.text
    jid = r.headers["X-Quanguard-Job"]
    job = client.get(f"/v1/exchange/jobs/{jid}", headers=auth(world["bank"])).json()
    assert job["status"] == "done" and job["extract"]["watermarked"] is True
    assert job["extract"]["mask_profile"] == "共享"  # the L2 rule's obligation (members is internal data)
    verify_receipt(job["receipt"], data=r.content)
    with container.session() as s:
        copies = container.watermarker.copies(s, "members")
    assert copies, "the extract was not registered for leak tracing"


@pytest.mark.parametrize("bad", ["\ud800", "\x00"])
@pytest.mark.parametrize("route", ["aggregate", "extract", "psi"])
def test_lone_surrogate_in_a_body_is_refused_and_recorded(
        client: TestClient, world: dict[str, str], container: Container, route: str,
        bad: str) -> None:
    """A JSON escape "\\ud800" without its pair (or "\\u0000") in any field of a request
    on a registered dataset: 422 with the request id, and the attempt is in the trail
    (never a 500; PostgreSQL cannot store NUL in text)."""
    body = {"dataset": "members", "agg": "count", "purpose": f"统计 {bad}", "format": "csv",
            "request": "AAAA"}
    raw = json.dumps(body, ensure_ascii=True).encode()
    assert b"\\u" in raw
    rid = f"bad-{route}-{ord(bad)}"
    r = client.post(f"/v1/exchange/{route}", content=raw,
                    headers={**auth(world["bank"]), "content-type": "application/json",
                             "x-request-id": rid})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["request_id"] == rid
    assert ("surrogate" if bad != "\x00" else "NUL") in r.text
    with container.session() as s:
        events = [json.loads(e.body) for e in container.audit.store.iter_range(s, 1)]
    assert [e["trace"]["id"] for e in events].count(rid) == 1


@pytest.mark.parametrize("field", ["epsilon", "q", "bins"])
def test_a_boolean_is_not_a_number(client: TestClient, world: dict[str, str], container: Container,
                                   field: str) -> None:
    """JSON ``true`` where a number belongs (``"epsilon": true``) is refused with 422 naming
    the field, not read as 1 — no budget is spent on a value the caller never wrote — and
    the attempt is in the trail."""
    rid = f"boolean-{field}"
    r = client.post("/v1/exchange/aggregate",
                    json={"dataset": "members", "agg": "quantile", "column": "income",
                          field: True},
                    headers={**auth(world["bank"]), "x-request-id": rid})
    assert r.status_code == 422, r.text
    msgs = " ".join(p["msg"] for p in r.json()["error"]["problems"])
    assert f"body.{field} must be a number, got true" in msgs
    assert r.json()["error"]["request_id"] == rid
    with container.session() as s:
        events = [json.loads(e.body) for e in container.audit.store.iter_range(s, 1)]
    assert [e["trace"]["id"] for e in events].count(rid) == 1
    with container.session() as s:
        rows = [e.columns for e in container.audit.store.iter_range(s, 1)]
    assert not [c for c in rows if c["action"] == "exchange.aggregate" and c["outcome"] == "success"]


@pytest.mark.parametrize("route", ["aggregate", "psi", "extract"])
def test_a_purpose_longer_than_an_event_text_is_refused(
        client: TestClient, world: dict[str, str], container: Container, route: str) -> None:
    """A purpose of megabytes (the body limit is 64 MiB) is refused (422, the spec's
    maxLength) before any work, and the attempt is recorded; the trail's texts hold at most
    2,000 characters."""
    rid = f"long-purpose-{route}"
    body = {"dataset": "members", "agg": "count", "purpose": "核验" * 600_000,
            "format": "csv", "request": "AAAA"}
    r = client.post(f"/v1/exchange/{route}", json=body,
                    headers={**auth(world["bank"]), "x-request-id": rid})
    assert r.status_code == 422, r.text[:300]
    problems = r.json()["error"]["problems"]
    assert [p["loc"] for p in problems] == [["body", "purpose"]] and "2000" in problems[0]["msg"]
    with container.session() as s:
        rows = [e for e in container.audit.store.iter_range(s, 1)]
    mine = [e for e in rows if json.loads(e.body).get("trace", {}).get("id") == rid]
    assert len(mine) == 1 and mine[0].columns["outcome"] == "failure"
    assert len(mine[0].body) < 10_000


def test_the_purpose_limit_holds_below_the_api(container: Container, world: dict[str, str]) -> None:
    """The use cases refuse a long purpose themselves (the CLI has no body schema): 400,
    recorded, no job."""
    from quanguard.auth import Principal
    from quanguard.errors import InvalidInput
    from quanguard.usecases import exchange as ucx

    principal = Principal(id="cli-consumer", name="cli", role="consumer", org="某银行")
    with pytest.raises(InvalidInput, match="purpose is 2,001 characters long; at most 2000"):
        ucx.aggregate(container, principal, None, dataset="members", query={"agg": "count"},
                      purpose="x" * 2001)
    with container.session() as s:
        rows = [e.columns for e in container.audit.store.iter_range(s, 1)]
    last = rows[-1]
    assert last["action"] == "exchange.aggregate" and last["outcome"] == "failure"
    assert "2,001" in str(last["reason"])


@pytest.mark.parametrize("verdict", ["approve", "reject"])
def test_a_decision_reason_longer_than_an_event_text_is_refused(
        client: TestClient, world: dict[str, str], container: Container, verdict: str) -> None:
    """A manager's reason of megabytes went into the job and the trail whole, like a long
    purpose: refused (422, recorded), and the job still waits for a decision."""
    r = client.post("/v1/exchange/datasets", headers=auth(world["prov"]),
                    data={"name": "contacts", "key_column": "member"},
                    files={"file": ("c.csv", members(phone=True), "text/csv")})
    assert r.status_code == 201
    jid = client.post("/v1/exchange/aggregate", headers=auth(world["bank"]),
                      json={"dataset": "contacts", "agg": "count", "epsilon": 0.5}).json()["job"]
    rid = f"long-reason-{verdict}"
    r = client.post(f"/v1/exchange/jobs/{jid}/{verdict}", json={"reason": "理由" * 600_000},
                    headers={**auth(world["mgr"]), "x-request-id": rid})
    assert r.status_code == 422, r.text[:300]
    assert [p["loc"] for p in r.json()["error"]["problems"]] == [["body", "reason"]]
    assert client.get(f"/v1/exchange/jobs/{jid}", headers=auth(world["bank"])).json()["status"] \
        == "pending_approval"
    with container.session() as s:
        rows = list(container.audit.store.iter_range(s, 1))
    assert [json.loads(e.body).get("trace", {}).get("id") for e in rows].count(rid) == 1
    assert max(len(e.body) for e in rows) < 10_000


def test_the_reason_limit_holds_below_the_api(container: Container, world: dict[str, str]) -> None:
    """The use case refuses a long decision reason itself (the CLI has no body schema):
    400, recorded before the job is looked up."""
    from quanguard.auth import Principal
    from quanguard.errors import InvalidInput
    from quanguard.usecases import exchange as ucx

    manager = Principal(id="cli-manager", name="cli", role="manager", org="市大数据局")
    with pytest.raises(InvalidInput, match="reason is 2,001 characters long; at most 2000"):
        ucx.approve(container, manager, None, "job-none", approve=False, reason="x" * 2001)
    with container.session() as s:
        last = list(container.audit.store.iter_range(s, 1))[-1].columns
    assert last["action"] == "exchange.reject" and last["outcome"] == "failure"
    assert "2,001" in str(last["reason"])
