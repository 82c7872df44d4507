"""Tenancy: a key of another org sees nothing of this org's jobs, assets or consent registry.

Consumers see only their own jobs; providers see the jobs run on their own datasets and
the assets of their own org; overseers (manager, auditor, officer, admin) see all. A job or
asset the caller may not see answers exactly like a missing one (no existence oracle).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from quanguard.auth import Principal
from tests.conftest import auth, csv_bytes

HEALTH, CIVIL = "市卫健委", "市民政局"
BANK, LAB = "某银行", "某研究所"


def _table(name: str, n: int = 400, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    cols = {
        f"{name}_id": [f"{name[:1].upper()}{i:06d}" for i in range(n)],
        "district": [rnd.choice(["历下区", "市中区", "槐荫区"]) for _ in range(n)],
        "amount": [rnd.randint(0, 10_000) for _ in range(n)],
    }
    return csv_bytes(pa.table(cols))


@pytest.fixture
def orgs(
    client: TestClient, make_key: Callable[..., tuple[str, Principal]]
) -> tuple[dict[str, str], dict[str, str]]:
    keys = {
        "health": make_key("provider", org=HEALTH)[0],
        "civil": make_key("provider", org=CIVIL)[0],
        "bank": make_key("consumer", org=BANK)[0],
        "bank2": make_key("consumer", org=BANK)[0],  # same org, another key holder
        "lab": make_key("consumer", org=LAB)[0],
        "mgr": make_key("manager", org="市大数据局")[0],
        "aud": make_key("auditor", org="市网信办")[0],
    }
    for owner, name in (("health", "clinics"), ("civil", "pensions")):
        r = client.post(
            "/v1/exchange/datasets", headers=auth(keys[owner]),
            data={"name": name, "key_column": f"{name}_id", "bounds": "amount=0:10000"},
            files={"file": (f"{name}.csv", _table(name), "text/csv")},
        )
        assert r.status_code == 201, r.text
    jobs = {}
    for consumer, dataset in (("bank", "clinics"), ("lab", "pensions")):
        r = client.post("/v1/exchange/aggregate", headers=auth(keys[consumer]),
                        json={"dataset": dataset, "agg": "count", "by": ["district"], "epsilon": 0.5})
        assert r.status_code == 200, r.text
        jobs[consumer] = r.json()["job"]
    return keys, jobs


def _job_ids(client: TestClient, key: str) -> set[str]:
    r = client.get("/v1/exchange/jobs", headers=auth(key))
    assert r.status_code == 200, r.text
    return {j.get("job") or j.get("id") for j in r.json()}


def test_consumers_see_only_their_own_jobs(client: TestClient, orgs: tuple[dict[str, str], dict[str, str]]) -> None:
    keys, jobs = orgs
    assert _job_ids(client, keys["bank"]) == {jobs["bank"]}
    assert _job_ids(client, keys["lab"]) == {jobs["lab"]}
    assert _job_ids(client, keys["bank2"]) == set()  # jobs belong to the key holder
    missing = client.get("/v1/exchange/jobs/does-not-exist", headers=auth(keys["lab"]))
    foreign = client.get(f"/v1/exchange/jobs/{jobs['bank']}", headers=auth(keys["lab"]))
    assert foreign.status_code == missing.status_code == 404
    same = foreign.json()["error"]["message"].replace(jobs["bank"], "ID")
    assert same == missing.json()["error"]["message"].replace("does-not-exist", "ID")
    assert client.get(f"/v1/exchange/jobs/{jobs['bank']}", headers=auth(keys["bank"])).status_code == 200


def test_providers_see_the_jobs_on_their_own_data_only(client: TestClient, orgs: tuple[dict[str, str], dict[str, str]]) -> None:
    keys, jobs = orgs
    assert _job_ids(client, keys["health"]) == {jobs["bank"]}
    assert _job_ids(client, keys["civil"]) == {jobs["lab"]}
    r = client.get(f"/v1/exchange/jobs/{jobs['lab']}", headers=auth(keys["health"]))
    assert r.status_code == 404


@pytest.mark.parametrize("who", ["mgr", "aud"])
def test_overseers_see_every_job(client: TestClient, orgs: tuple[dict[str, str], dict[str, str]], who: str) -> None:
    keys, jobs = orgs
    assert _job_ids(client, keys[who]) >= set(jobs.values())


def test_a_provider_cannot_touch_another_orgs_dataset(client: TestClient, orgs: tuple[dict[str, str], dict[str, str]]) -> None:
    keys, _ = orgs
    r = client.post("/v1/exchange/datasets/clinics/consent", headers=auth(keys["civil"]),
                    json={"subjects": ["C000001"], "purpose": "统计", "state": "withdrawn"})
    assert r.status_code in (403, 404), r.text
    # Re-registering another org's dataset name must not take it over.
    r = client.post("/v1/exchange/datasets", headers=auth(keys["civil"]),
                    data={"name": "clinics", "key_column": "clinics_id"},
                    files={"file": ("clinics.csv", _table("clinics", seed=9), "text/csv")})
    assert r.status_code in (403, 409), r.text
    meta = client.get("/v1/exchange/datasets/clinics", headers=auth(keys["bank"])).json()
    assert meta["owner_org"] == HEALTH


def test_catalog_shows_metadata_never_rows(client: TestClient, orgs: tuple[dict[str, str], dict[str, str]]) -> None:
    keys, _ = orgs
    listing = client.get("/v1/exchange/datasets", headers=auth(keys["lab"]))
    assert listing.status_code == 200
    text = listing.text
    for value in ("C000001", "P000001", "C000399"):
        assert value not in text


def test_assets_are_scoped_to_the_providers_org(client: TestClient, orgs: tuple[dict[str, str], dict[str, str]], make_key: Callable[..., tuple[str, Principal]]) -> None:
    keys, _ = orgs
    for owner in ("health", "civil"):
        r = client.post("/v1/scan", headers=auth(keys[owner]), data={"dataset": f"{owner}-export"},
                        files={"file": (f"{owner}.csv", _table(owner, 50), "text/csv")})
        assert r.status_code == 200, r.text
    seen = {
        who: {a["dataset"] for a in client.get("/v1/assets", headers=auth(keys[who])).json()["assets"]}
        for who in ("health", "civil", "mgr")
    }
    assert "health-export" in seen["health"] and "civil-export" not in seen["health"]
    assert "civil-export" in seen["civil"] and "health-export" not in seen["civil"]
    assert {"health-export", "civil-export"} <= seen["mgr"]
    civil_assets = client.get("/v1/assets", headers=auth(keys["civil"])).json()["assets"]
    civil_id = next(a for a in civil_assets if a["dataset"] == "civil-export")["id"]
    assert client.get(f"/v1/assets/{civil_id}", headers=auth(keys["health"])).status_code == 404
    assert client.get(f"/v1/assets/{civil_id}", headers=auth(keys["civil"])).status_code == 200
