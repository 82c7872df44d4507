"""An approval does not outlive the policy that allowed it, and the named approver approves.

What a consumer and a careless approver did:

* The bank submits a PSI on residents' IDs; a manager approves it. Compliance then revokes
  the bank (a deny rule) and reloads. A fresh PSI is refused — but the bank reran the
  approved job for up to seven days (``Delivery._approved`` used the decision stored at
  submission, never the policy in force).
* The bank's L4 aggregate is pending; the bank is revoked; the manager approves anyway —
  the aggregate ran and ε was charged.
* Compliance writes ``approval: officer`` on a rule: a manager approved the job anyway
  (nothing read the obligation), and the officer could not approve at all.

Now a job runs only if the policy in force still lets its consumer do what it asks (on the
grade the dataset has now), under the obligations of that policy; a refusal is recorded. A
job is approved only by the role its rule names (a manager where it names none).
"""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from exchange import PsiClient
from quanguard.auth import create_key
from quanguard.container import Container, build_container
from tests.conftest import POLICY_DIR, auth, make_settings
from tests.conftest import csv_bytes as _csv
from tests.quanguard.test_exchange_flows import resident_id

PROV, BANK = "市卫健委", "某银行"

DENY_BANK = f"""
  - id: zz-revoke-bank
    description: 撤销某银行的交换权限
    priority: 950
    roles: [consumer]
    actions: [psi, aggregate, extract]
    conditions: {{orgs: [{BANK}]}}
    effect: deny
"""

OFFICER_APPROVES = """
  - id: zz-officer-approve
    description: 合规官审批其规则指定由合规官审批的申请
    priority: 100
    roles: [officer]
    actions: [approve]
    grades: [L1, L2, L3, L4]
    effect: allow
"""


@pytest.fixture
def pol(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture
def container(tmp_path: Path, pol: Path) -> Iterator[Container]:
    c = build_container(make_settings(tmp_path, policy_dir=pol))
    yield c
    c.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    from quanguard.api.app import create_app

    with TestClient(create_app(container)) as c:
        yield c


@pytest.fixture
def keys(client: TestClient, container: Container) -> dict[str, str]:
    def key(role: str, org: str = "市大数据局") -> str:
        with container.session() as s, s.begin():
            return create_key(s, role=role, org=org, name=f"{role}-{uuid.uuid4().hex[:6]}").key

    return {"prov": key("provider", PROV), "bank": key("consumer", BANK), "mgr": key("manager"),
            "off": key("officer")}


def add_rules(client: TestClient, keys: dict[str, str], pol: Path, text: str) -> None:
    roles = pol / "roles.yaml"
    roles.write_text(roles.read_text(encoding="utf-8") + text, encoding="utf-8")
    r = client.post("/v1/policy/reload", headers=auth(keys["off"]))
    assert r.status_code == 200, r.text


def edit_rule(pol: Path, rule_id: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` once, inside the rule ``rule_id`` of roles.yaml."""
    roles = pol / "roles.yaml"
    head, tail = roles.read_text(encoding="utf-8").split(f"- id: {rule_id}\n", 1)
    rule, rest = tail.split("- id:", 1) if "- id:" in tail else (tail, None)
    assert old in rule, (rule_id, old)
    rule = rule.replace(old, new, 1)
    roles.write_text(head + f"- id: {rule_id}\n" + rule + ("" if rest is None else "- id:" + rest),
                     encoding="utf-8")


def register(client: TestClient, keys: dict[str, str], name: str, cols: dict[str, Any],
             **data: str) -> dict[str, Any]:
    r = client.post("/v1/exchange/datasets", headers=auth(keys["prov"]), data={"name": name, **data},
                    files={"file": (f"{name}.csv", _csv(pa.table(cols)), "text/csv")})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def residents(client: TestClient, keys: dict[str, str], n: int = 300) -> list[str]:
    ids = [resident_id(i) for i in range(n)]
    assert register(client, keys, "residents", {"rid": ids, "n": list(range(n))},
                    key_column="rid")["grade"] == "L4"
    return ids


def events(container: Container) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from monitor.store import EVENTS

    with container.engine.connect() as conn:
        return [json.loads(b) for (b,) in conn.execute(select(EVENTS.c.body).order_by(EVENTS.c.seq))]


def denied(container: Container, action: str) -> list[dict[str, Any]]:
    """The refused ``action`` events (by the policy, or by the exchange after it)."""
    return [e for e in events(container) if e["event"]["action"] == action
            and e["event"]["outcome"] != "success"]


# -- the policy in force decides when a job runs ------------------------------------------
def test_an_approved_psi_does_not_run_after_the_consumer_is_revoked(
        client: TestClient, keys: dict[str, str], pol: Path, container: Container) -> None:
    ids = residents(client, keys)
    request = base64.b64encode(PsiClient(ids[:12], reveal="count").request()).decode()
    body = {"dataset": "residents", "request": request}
    job = client.post("/v1/exchange/psi", headers=auth(keys["bank"]), json=body).json()["job"]
    r = client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(keys["mgr"]), json={"reason": "核验"})
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    add_rules(client, keys, pol, DENY_BANK)
    assert client.post("/v1/exchange/psi", headers=auth(keys["bank"]), json=body).status_code == 403
    before = len(denied(container, "exchange.psi"))
    r = client.post("/v1/exchange/psi", headers=auth(keys["bank"]), json={**body, "job": job})
    assert r.status_code == 403, r.text
    assert "zz-revoke-bank" in r.text or "撤销" in r.text, r.text
    refusals = denied(container, "exchange.psi")[before:]
    assert len(refusals) == 1 and refusals[0]["labels"]["job"] == job, refusals
    # the stored request is not run by asking without it either
    r = client.post("/v1/exchange/psi", headers=auth(keys["bank"]),
                    json={"dataset": "residents", "job": job})
    assert r.status_code == 403, r.text


def test_a_pending_aggregate_is_not_approved_into_a_run_the_policy_now_denies(
        client: TestClient, keys: dict[str, str], pol: Path, container: Container) -> None:
    residents(client, keys, 400)
    r = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                    json={"dataset": "residents", "agg": "count", "epsilon": 0.5})
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    add_rules(client, keys, pol, DENY_BANK)
    r = client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(keys["mgr"]), json={"reason": "ok"})
    assert r.status_code == 403, r.text
    state = client.get(f"/v1/exchange/jobs/{job}", headers=auth(keys["mgr"])).json()
    assert state["status"] == "pending_approval" and not state.get("result"), state
    ran = [e for e in events(container) if e["event"]["action"] == "exchange.aggregate"
           and e["event"]["outcome"] == "success" and e.get("labels", {}).get("job") == job]
    assert not ran, "nothing ran, no ε was charged"
    (refusal,) = denied(container, "exchange.approve")
    assert refusal["labels"]["job"] == job and "zz-revoke-bank" in json.dumps(refusal, ensure_ascii=False)
    # rejecting it stays possible (a manager clears the queue)
    r = client.post(f"/v1/exchange/jobs/{job}/reject", headers=auth(keys["mgr"]), json={"reason": "已撤销"})
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text


def test_an_approved_extract_does_not_run_after_the_consumer_is_revoked(
        client: TestClient, keys: dict[str, str], pol: Path) -> None:
    edit_rule(pol, "consumer-extract-l2", "effect: allow\n    obligations:\n",
              "effect: approval_required\n    obligations:\n      approval: manager\n")
    add_rules(client, keys, pol, "")
    streets = {"编号": [f"{370100000 + i}" for i in range(300)],
               "街道": [["泉城路街道", "文东街道", "甸柳街道"][i % 3] for i in range(300)]}
    assert register(client, keys, "streets", streets, key_column="编号")["grade"] == "L2"
    r = client.post("/v1/exchange/extract", headers=auth(keys["bank"]), json={"dataset": "streets"})
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    r = client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(keys["mgr"]), json={"reason": "ok"})
    assert r.status_code == 200, r.text
    add_rules(client, keys, pol, DENY_BANK)
    r = client.post("/v1/exchange/extract", headers=auth(keys["bank"]),
                    json={"dataset": "streets", "job": job})
    assert r.status_code == 403, r.text


def test_an_approved_psi_runs_under_the_obligations_in_force(
        client: TestClient, keys: dict[str, str], pol: Path) -> None:
    """The rule now caps a request at 5 identifiers: the approved 12 are refused."""
    ids = residents(client, keys)
    request = base64.b64encode(PsiClient(ids[:12], reveal="count").request()).decode()
    body = {"dataset": "residents", "request": request}
    job = client.post("/v1/exchange/psi", headers=auth(keys["bank"]), json=body).json()["job"]
    assert client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(keys["mgr"]),
                       json={"reason": "ok"}).status_code == 200
    edit_rule(pol, "consumer-psi-l4", "row_limit: 1000000", "row_limit: 5")
    add_rules(client, keys, pol, "")
    r = client.post("/v1/exchange/psi", headers=auth(keys["bank"]), json={**body, "job": job})
    assert r.status_code == 403 and "5" in r.json()["error"]["message"], r.text


def test_an_approved_psi_still_runs_when_the_policy_still_allows_it(
        client: TestClient, keys: dict[str, str], pol: Path) -> None:
    ids = residents(client, keys)
    local = PsiClient(ids[:12], reveal="count")
    body = {"dataset": "residents", "request": base64.b64encode(local.request()).decode()}
    job = client.post("/v1/exchange/psi", headers=auth(keys["bank"]), json=body).json()["job"]
    assert client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(keys["mgr"]),
                       json={"reason": "ok"}).status_code == 200
    add_rules(client, keys, pol, OFFICER_APPROVES)  # an unrelated change: a new policy version
    r = client.post("/v1/exchange/psi", headers=auth(keys["bank"]), json={**body, "job": job})
    assert r.status_code == 200, r.text
    answer = r.json()
    size = local.finish(base64.b64decode(answer["setup"]), base64.b64decode(answer["response"]))
    assert size.intersection_size == 12


# -- the approver the rule names ----------------------------------------------------------
def _officer_rule(pol: Path) -> None:
    edit_rule(pol, "consumer-psi-l4", "approval: manager", "approval: officer")


def _psi_job(client: TestClient, keys: dict[str, str], ids: list[str]) -> str:
    request = base64.b64encode(PsiClient(ids[:12], reveal="count").request()).decode()
    r = client.post("/v1/exchange/psi", headers=auth(keys["bank"]),
                    json={"dataset": "residents", "request": request})
    assert r.status_code == 202, r.text
    return str(r.json()["job"])


def _approvals(client: TestClient, keys: dict[str, str]) -> dict[str, int]:
    """A fresh L4 PSI job, approved first by the officer, then by the manager: the statuses."""
    job = _psi_job(client, keys, residents(client, keys))
    return {who: client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(keys[who]),
                             json={"reason": "ok"}).status_code for who in ("off", "mgr")}


def test_a_job_whose_rule_names_the_officer_is_not_approved_by_a_manager(
        client: TestClient, keys: dict[str, str], pol: Path, container: Container) -> None:
    _officer_rule(pol)
    add_rules(client, keys, pol, OFFICER_APPROVES)
    ids = residents(client, keys)
    job = _psi_job(client, keys, ids)
    r = client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(keys["mgr"]), json={"reason": "ok"})
    assert r.status_code == 403 and "officer" in r.json()["error"]["message"], r.text
    assert denied(container, "exchange.approve")
    r = client.post(f"/v1/exchange/jobs/{job}/reject", headers=auth(keys["mgr"]), json={"reason": "no"})
    assert r.status_code == 403, r.text  # rejecting is deciding too
    r = client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(keys["off"]), json={"reason": "合规"})
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text


def test_the_named_approver_still_needs_the_policy_to_let_it_approve(
        client: TestClient, keys: dict[str, str], pol: Path) -> None:
    _officer_rule(pol)
    add_rules(client, keys, pol, "")  # reload: no rule lets an officer approve
    assert _approvals(client, keys) == {"off": 403, "mgr": 403}


def test_an_officer_cannot_approve_what_a_manager_is_named_for(
        client: TestClient, keys: dict[str, str], pol: Path) -> None:
    add_rules(client, keys, pol, OFFICER_APPROVES)
    assert _approvals(client, keys) == {"off": 403, "mgr": 200}


def test_consumers_and_providers_cannot_approve(client: TestClient, keys: dict[str, str]) -> None:
    ids = residents(client, keys)
    job = _psi_job(client, keys, ids)
    for who in ("bank", "prov"):
        r = client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(keys[who]), json={"reason": "ok"})
        assert r.status_code == 403, (who, r.text)


# -- the receipt names who received what, for what, under which decision -------------------
def test_a_receipt_names_its_recipient_purpose_decision_and_approver(
        client: TestClient, keys: dict[str, str], container: Container) -> None:
    """Before, a receipt named the job, dataset, query and result only: offline it could not
    show who received the result, for which purpose, or under which approval."""
    from exchange import ReceiptInvalid, verify_receipt

    pinned = bytes.fromhex(client.get("/v1/exchange/receipt-key", headers=auth(keys["bank"]))
                           .json()["public_key"])
    ids = residents(client, keys)
    local = PsiClient(ids[:12], reveal="count")
    body = {"dataset": "residents", "request": base64.b64encode(local.request()).decode(),
            "purpose": "贷款资格核验"}
    job = client.post("/v1/exchange/psi", headers=auth(keys["bank"]), json=body).json()["job"]
    approval = client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(keys["mgr"]),
                           json={"reason": "核验"}).json()
    r = client.post("/v1/exchange/psi", headers=auth(keys["bank"]), json={**body, "job": job})
    assert r.status_code == 200, r.text
    receipt = r.json()["receipt"]
    verify_receipt(receipt, public_key=pinned)
    assert receipt["version"] == 3
    assert receipt["consumer"] == approval["consumer"] and receipt["consumer_org"] == BANK
    assert receipt["purpose"] == "贷款资格核验"
    assert receipt["approved_by"] == approval["decided_by"]
    assert receipt["rule_id"] == "consumer-psi-l4"
    assert receipt["policy_version"] == container.policy.version
    for field, value in (("consumer_org", "某某公司"), ("purpose", "营销"), ("approved_by", None),
                         ("consumer", "someone-else"), ("policy_version", "0" * 64)):
        with pytest.raises(ReceiptInvalid):
            verify_receipt({**receipt, field: value}, public_key=pinned)
    # a downgrade to the version without these fields does not verify either
    older = {k: v for k, v in receipt.items() if k not in (
        "consumer", "consumer_org", "purpose", "policy_version", "rule_id", "approved_by")}
    with pytest.raises(ReceiptInvalid):
        verify_receipt({**older, "version": 2}, public_key=pinned)
    with pytest.raises(ReceiptInvalid, match="version"):
        verify_receipt({**receipt, "version": 9}, public_key=pinned)
    # an aggregate that needed no approval names none
    assert register(client, keys, "members", {"member": [f"M{i:06d}" for i in range(400)],
                                              "income": [i * 10 for i in range(400)]},
                    key_column="member", bounds="income=0:4000")["grade"] == "L2"
    r = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                    json={"dataset": "members", "agg": "count", "epsilon": 0.2})
    assert r.status_code == 200, r.text
    receipt = r.json()["receipt"]
    verify_receipt(receipt, result=r.json()["result"], public_key=pinned)
    assert receipt["approved_by"] is None and receipt["purpose"] is None
    assert receipt["consumer_org"] == BANK and receipt["rule_id"]
    # an aggregate that ran on approval names its approver
    r = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                    json={"dataset": "residents", "agg": "count", "epsilon": 0.5})
    assert r.status_code == 202, r.text
    done = client.post(f"/v1/exchange/jobs/{r.json()['job']}/approve", headers=auth(keys["mgr"]),
                       json={"reason": "ok"}).json()
    verify_receipt(done["receipt"], public_key=pinned)
    assert done["receipt"]["approved_by"] == done["decided_by"] == approval["decided_by"]


def test_receipts_issued_before_version_3_still_verify(tmp_path: Path) -> None:
    from exchange import ReceiptInvalid, verify_receipt
    from exchange.receipts import ReceiptSigner, canonical
    from tests.conftest import active_suite

    suite = active_suite()
    signer = ReceiptSigner.from_dir(tmp_path, suite)
    pub = signer.public_key
    payload = {"version": 2, "job": "job-1", "kind": "aggregate", "dataset": "d",
               "dataset_digest": "ab" * 32, "query": {"agg": "count"}, "epsilon_spent": 0.5,
               "delta_spent": 0.0, "result_digest": "cd" * 32, "issued_at": "2026-11-26T08:00:00+00:00",
               "key_id": suite.hexdigest(pub), "hash_alg": suite.hash_alg,
               "signature_alg": suite.sign_alg}
    old = {**payload, "public_key": pub.hex(), "signature": signer._key.sign(canonical(payload)).hex()}
    verify_receipt(old, public_key=pub)
    with pytest.raises(ReceiptInvalid):
        verify_receipt({**old, "epsilon_spent": 0.1}, public_key=pub)
