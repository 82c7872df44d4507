"""Issue 11, the exchange seams, tried as a hostile consumer and a careless provider would.

Each test reproduces one attack from the issue and failed on the code before the fix:

* finding 1  — an approval of a 3-identifier PSI was used to run 84,000 guessed ids;
               an approval never expired; the approver never saw what was asked.
* finding 3  — single-identifier PSI and group testing answered membership without limit.
* finding 4  — the same people registered under a second name got a fresh ε budget.
* finding 10 — infinite / NaN / huge bounds and ε = 5e-324 were 500s, pasted into SQL, unrecorded.
* 防泄漏     — an extract that still held identifiers left the service; a provider's
               declared grade was ignored.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from exchange import PsiClient
from quanguard.auth import Principal
from quanguard.container import Container
from tests.conftest import auth
from tests.quanguard.test_exchange_flows import csv_bytes, resident_id

PROV, BANK = "市卫健委", "某银行"


def members(n: int = 400, seed: int = 3) -> bytes:
    rnd = random.Random(seed)
    return csv_bytes({
        "member": [f"M{i:06d}" for i in range(n)],
        "district": [rnd.choice(["历下区", "市中区", "槐荫区"]) for _ in range(n)],
        "income": [rnd.randint(0, 30_000) for _ in range(n)],
    })


@pytest.fixture
def keys(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> dict[str, str]:
    return {"prov": make_key("provider", org=PROV)[0], "bank": make_key("consumer", org=BANK)[0],
            "mgr": make_key("manager")[0]}


def events(container: Container) -> list[dict[str, Any]]:
    with container.session() as s:
        return [json.loads(e.body) for e in container.audit.store.iter_range(s)]


def denials(container: Container, action: str) -> list[dict[str, Any]]:
    out = []
    for e in events(container):
        flat = json.dumps(e, ensure_ascii=False)
        if action in flat and ('"deny"' in flat or '"failure"' in flat):
            out.append(e)
    return out


def register(client: TestClient, key: str, name: str, body: bytes, **data: object) -> httpx2.Response:
    return client.post("/v1/exchange/datasets", headers=auth(key), data={"name": name, **data},
                       files={"file": (f"{name}.csv", body, "text/csv")})


def send_psi(client: TestClient, key: str, dataset: str, request: bytes, **extra: object) -> httpx2.Response:
    return client.post("/v1/exchange/psi", headers=auth(key), json={
        "dataset": dataset, "request": base64.b64encode(request).decode(), **extra})


# -- finding 1: what is approved is what runs -------------------------------------------------

def _l4_residents(client: TestClient, keys: dict[str, str], n: int = 300) -> list[str]:
    ids = [resident_id(i) for i in range(n)]
    r = register(client, keys["prov"], "residents", csv_bytes({"rid": ids, "n": list(range(n))}),
                 key_column="rid")
    assert r.status_code == 201 and r.json()["grade"] == "L4", r.text
    return ids


def test_an_approved_psi_runs_only_the_approved_request(client: TestClient, keys: dict[str, str], container: Container) -> None:
    ids = _l4_residents(client, keys)
    mine = ids[:6] + [resident_id(50_000 + i) for i in range(6)]
    small = PsiClient(mine, reveal="count")
    asked = small.request()
    r = send_psi(client, keys["bank"], "residents", asked, purpose="反欺诈核验")
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    # the approver sees what is asked: size, digest, purpose
    pending = client.get("/v1/exchange/jobs", headers=auth(keys["mgr"]),
                         params={"status": "pending_approval"}).json()
    shown = next(j for j in pending if j["job"] == job)["request"]
    assert shown["size"] == 12 and len(shown["digest"]) == 64 and shown["purpose"] == "反欺诈核验"
    approved = client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(keys["mgr"]),
                           json={"reason": "核验 12 人"})
    assert approved.status_code == 200 and approved.json()["request"]["size"] == 12
    # the attack: the approval is reused for thousands of guessed identifiers
    guesses = PsiClient([resident_id(i) for i in range(3000)], reveal="count")
    r = send_psi(client, keys["bank"], "residents", guesses.request(), job=job)
    assert r.status_code in (403, 409), r.text
    assert "approved" in r.json()["error"]["message"]
    refused = [e for e in denials(container, "exchange.psi") if job in json.dumps(e)]
    assert refused, "the refused reuse of an approval left no record"
    state = client.get(f"/v1/exchange/jobs/{job}", headers=auth(keys["bank"])).json()
    assert state["status"] == "approved" and state["request"]["size"] == 12
    # the approved request itself still runs, exactly once
    r = send_psi(client, keys["bank"], "residents", asked, job=job)
    assert r.status_code == 200, r.text
    out = small.finish(base64.b64decode(r.json()["setup"]), base64.b64decode(r.json()["response"]))
    assert out.intersection_size == 6
    assert send_psi(client, keys["bank"], "residents", asked, job=job).status_code == 409


def test_an_approval_expires(client: TestClient, keys: dict[str, str], container: Container) -> None:
    _l4_residents(client, keys)
    local = PsiClient([resident_id(i) for i in range(12)], reveal="count")
    req = local.request()
    job = send_psi(client, keys["bank"], "residents", req).json()["job"]
    assert client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(keys["mgr"]),
                       json={"reason": "ok"}).status_code == 200
    shown = client.get(f"/v1/exchange/jobs/{job}", headers=auth(keys["bank"])).json()
    expires = datetime.fromisoformat(shown["request"]["expires_at"])
    assert timedelta(days=6) < expires - datetime.now(UTC) <= timedelta(days=7)

    class Later:
        def now(self) -> datetime:
            return datetime.now(UTC) + timedelta(days=8)

    container.exchange.clock = Later()
    r = send_psi(client, keys["bank"], "residents", req, job=job)
    assert r.status_code in (403, 409) and "expired" in r.json()["error"]["message"], r.text
    assert [e for e in denials(container, "exchange.psi") if job in json.dumps(e)]


def test_an_aggregate_approval_runs_the_stored_query(client: TestClient, keys: dict[str, str], container: Container) -> None:
    ids = _l4_residents(client, keys, 400)
    del ids
    r = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                    json={"dataset": "residents", "agg": "count", "epsilon": 0.25, "purpose": "统计"})
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    shown = next(j for j in client.get("/v1/exchange/jobs", headers=auth(keys["mgr"])).json()
                 if j["job"] == job)["request"]
    assert shown["epsilon"] == 0.25 and shown["purpose"] == "统计" and len(shown["digest"]) == 64
    done = client.post(f"/v1/exchange/jobs/{job}/approve", headers=auth(keys["mgr"]),
                       json={"reason": "ok"}).json()
    assert done["status"] == "done" and done["epsilon_spent"] == pytest.approx(0.25)


# -- finding 3: PSI membership probing --------------------------------------------------------

def _l3_members(client: TestClient, keys: dict[str, str], n: int = 400) -> list[str]:
    """Members with phone numbers: graded L3, so PSI reveals the count only."""
    rnd = random.Random(5)
    ids = [f"M{i:06d}" for i in range(n)]
    phones = [f"13{rnd.randint(0, 999_999_999):09d}" for _ in range(n)]
    r = register(client, keys["prov"], "contacts", csv_bytes({"member": ids, "phone": phones}),
                 key_column="member")
    assert r.status_code == 201 and r.json()["grade"] == "L3", r.text
    return ids


def test_single_identifier_psi_is_refused_and_recorded(client: TestClient, keys: dict[str, str], container: Container) -> None:
    ids = _l3_members(client, keys)
    answered = 0
    for probe in ids[:5] + ["X999999"] * 5:
        r = send_psi(client, keys["bank"], "contacts", PsiClient([probe], reveal="count").request())
        assert r.status_code in (200, 403), r.text
        answered += r.status_code == 200
    assert answered == 0
    assert len(denials(container, "exchange.psi")) >= 10


def test_group_testing_is_cut_off_by_the_request_limit(client: TestClient, keys: dict[str, str], container: Container) -> None:
    ids = _l3_members(client, keys)
    candidates = ids[:33] + [f"Z{i:06d}" for i in range(31)]
    padding = [f"PAD{i:05d}" for i in range(20)]  # known non-members to pass the minimum size
    answered = refused = 0
    for i in range(48):
        probe = [candidates[i % 64]] + padding
        r = send_psi(client, keys["bank"], "contacts", PsiClient(probe, reveal="count").request())
        assert r.status_code in (200, 403), r.text
        answered += r.status_code == 200
        refused += r.status_code == 403
    assert answered <= 10 and refused >= 38
    assert len(denials(container, "exchange.psi")) >= refused


# -- finding 4: budgets follow the people -----------------------------------------------------

def test_the_same_people_under_a_second_name_share_one_budget(client: TestClient, keys: dict[str, str], container: Container) -> None:
    assert register(client, keys["prov"], "members", members(), key_column="member",
                    bounds="income=0:30000").status_code == 201
    copy = register(client, keys["prov"], "members_v2", members(seed=4), key_column="member",
                    bounds="income=0:30000")
    assert copy.status_code == 201, copy.text
    assert copy.json()["budget_family"] == "members"
    # and without declaring the key column: the unique identifier column still links them
    bare = register(client, keys["prov"], "members_v3", members(seed=5), bounds="income=0:30000")
    assert bare.status_code == 201 and bare.json()["budget_family"] == "members", bare.text
    cap = client.get("/v1/exchange/datasets/members/budget", headers=auth(keys["bank"])).json()
    spent = 0.0
    while spent + 2.0 <= cap["epsilon_cap"] + 1e-9:
        r = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                        json={"dataset": "members", "agg": "count", "epsilon": 2.0})
        assert r.status_code == 200, r.text
        spent += 2.0
    for name in ("members_v2", "members_v3"):
        r = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                        json={"dataset": name, "agg": "count", "epsilon": 1.0})
        assert r.status_code == 403 and "budget" in r.json()["error"]["message"], r.text
        left = client.get(f"/v1/exchange/datasets/{name}/budget", headers=auth(keys["bank"])).json()
        assert left["epsilon_spent"] == pytest.approx(spent)
    meta = client.get("/v1/exchange/datasets/members_v2", headers=auth(keys["mgr"])).json()
    assert meta["budget_family"] == "members"
    flat = json.dumps(events(container), ensure_ascii=False)
    assert "M000001" not in flat  # linked through keyed hashes, never raw ids


def test_different_people_keep_their_own_budget(client: TestClient, keys: dict[str, str]) -> None:
    assert register(client, keys["prov"], "members", members(), key_column="member").status_code == 201
    other = csv_bytes({"member": [f"Q{i:06d}" for i in range(400)], "district": ["历下区"] * 400})
    r = register(client, keys["prov"], "others", other, key_column="member")
    assert r.status_code == 201 and r.json()["budget_family"] == "others"


# -- finding 10: numbers ----------------------------------------------------------------------

@pytest.mark.parametrize("bounds", ["income=-inf:inf", "income=1e308:inf", "income=0:1e308",
                                    "income=nan:1", "income=0:nan", "income=5:1"])
def test_bad_bounds_are_a_recorded_400(client: TestClient, keys: dict[str, str], container: Container, bounds: str) -> None:
    r = register(client, keys["prov"], "members", members(), key_column="member", bounds=bounds)
    assert r.status_code == 400 and "bounds" in r.json()["error"]["message"], r.text
    assert denials(container, "exchange.register")


@pytest.mark.parametrize("epsilon", [5e-324, 1e-300, 0.0, -1.0])
def test_tiny_or_negative_epsilon_is_a_recorded_400(client: TestClient, keys: dict[str, str], container: Container, epsilon: float) -> None:
    assert register(client, keys["prov"], "members", members(), key_column="member",
                    bounds="income=0:30000").status_code == 201
    r = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                    json={"dataset": "members", "agg": "sum", "column": "income", "epsilon": epsilon})
    assert r.status_code == 400 and "epsilon" in r.json()["error"]["message"], r.text
    assert denials(container, "exchange.aggregate")
    left = client.get("/v1/exchange/datasets/members/budget", headers=auth(keys["bank"])).json()
    assert left["epsilon_spent"] == 0.0


def test_bounds_at_the_edge_of_the_range_still_compute(client: TestClient, keys: dict[str, str]) -> None:
    r = register(client, keys["prov"], "members", members(), key_column="member",
                 bounds="income=-1e12:1e12")
    assert r.status_code == 201, r.text
    for agg in ("sum", "mean", "quantile", "histogram"):
        r = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                        json={"dataset": "members", "agg": agg, "column": "income", "epsilon": 0.5})
        assert r.status_code == 200, (agg, r.text)


# -- 防泄漏: re-scan on the way out, declared grades -------------------------------------------

def test_an_extract_that_still_holds_identifiers_is_refused(client: TestClient, keys: dict[str, str], container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    """Grading and mask planning look at samples. A column whose sampled values are
    organisation codes (public, kept by every profile) and whose other rows hold phone
    numbers reaches the masked copy unmasked; the re-scan of the whole copy stops it."""
    import quanguard.services.exchange as wiring
    from tests.desensitize.data import pii_gen

    monkeypatch.setattr(wiring, "_SCAN_SAMPLE", 50)
    monkeypatch.setattr(wiring, "_MASK_SAMPLE", 50)
    rnd = random.Random(9)
    n = 400
    codes = [pii_gen.uscc(rnd) if i % 2 == 0 or i < 60 else f"13{rnd.randint(0, 999_999_999):09d}"
             for i in range(n)]
    codes[-1] = pii_gen.uscc(rnd)
    r = register(client, keys["prov"], "orgs", csv_bytes({"code": codes, "n": list(range(n))}),
                 key_column="code")
    assert r.status_code == 201, r.text
    assert r.json()["grade"] in ("L1", "L2"), r.text  # the sample saw organisation codes only
    r = client.post("/v1/exchange/extract", headers=auth(keys["bank"]), json={"dataset": "orgs"})
    assert r.status_code == 403, r.text[:300]
    assert "PHONE_NUMBER" in r.json()["error"]["message"]
    assert denials(container, "exchange.extract")


def test_a_declared_grade_is_a_floor(client: TestClient, keys: dict[str, str]) -> None:
    r = register(client, keys["prov"], "members", members(), key_column="member", grade="L3")
    assert r.status_code == 201 and r.json()["grade"] == "L3", r.text
    assert r.json()["declared_grade"] == "L3"
    r = register(client, keys["prov"], "bad", members(), grade="L9")
    assert r.status_code == 400 and "grade" in r.json()["error"]["message"]


def test_a_malformed_psi_request_is_a_recorded_400(client: TestClient, keys: dict[str, str], container: Container) -> None:
    assert register(client, keys["prov"], "members", members(), key_column="member").status_code == 201
    for request in ("not base64!", base64.b64encode(b"\x01\x02junk").decode()):
        r = client.post("/v1/exchange/psi", headers=auth(keys["bank"]),
                        json={"dataset": "members", "request": request})
        assert r.status_code == 400, r.text
    assert len(denials(container, "exchange.psi")) >= 2
