"""HTTP: POST /v1/policy/decide, GET /v1/policy, POST /v1/policy/reload."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quanguard.api.app import create_app
from quanguard.auth import create_key
from quanguard.container import Container, build_container
from tests.conftest import auth, make_settings
from tests.policy.conftest import PolicyCopy

BODY = {
    "principal": {"role": "consumer", "org": "某商业银行", "id": "u-1"},
    "action": "aggregate",
    "resource": {"grade": "L3", "owner_org": "市人社局", "dataset": "社保参保"},
}


@pytest.fixture
def own(tmp_path: Path, policy_copy: PolicyCopy) -> Iterator[tuple[Container, TestClient]]:
    # Manual reloads only: with the default 1 s check, a slow run reloads edited files on
    # its own inside the next request's decision, before the officer's reload reaches them
    # (test_files_changed_on_disk_are_picked_up_without_a_reload shows that path).
    container = build_container(make_settings(tmp_path, policy_dir=policy_copy.root,
                                              policy_check_seconds=3600))
    with TestClient(create_app(container)) as client:
        yield container, client
    container.close()


def _key(container: Container, role: str) -> str:
    with container.session() as session, session.begin():
        return create_key(session, role=role, org="市大数据局", name=f"{role}-k").key


@pytest.mark.parametrize("role", ["admin", "officer", "manager", "reporter"])
def test_decide_for_gateway_roles(own: tuple[Container, TestClient], role: str) -> None:
    container, client = own
    r = client.post("/v1/policy/decide", json=BODY, headers=auth(_key(container, role)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["effect"] == "approval_required"
    assert body["rule_id"] == "consumer-aggregate-l3" and body["matched"] is True
    assert body["obligations"]["min_group_size"] == 20
    assert body["policy_version"] == container.policy.version


@pytest.mark.parametrize("role", ["consumer", "provider", "auditor"])
def test_decide_forbidden_for_other_roles(own: tuple[Container, TestClient], role: str) -> None:
    container, client = own
    r = client.post("/v1/policy/decide", json=BODY, headers=auth(_key(container, role)))
    assert r.status_code == 403 and r.json()["error"]["kind"] == "forbidden"


def test_decide_requires_a_key(own: tuple[Container, TestClient]) -> None:
    _, client = own
    assert client.post("/v1/policy/decide", json=BODY).status_code == 401


def test_decide_no_rule_matched_is_distinguishable(own: tuple[Container, TestClient]) -> None:
    container, client = own
    body = {"principal": {"role": "consumer", "org": "丙行"}, "action": "scan", "resource": {}}
    r = client.post("/v1/policy/decide", json=body, headers=auth(_key(container, "manager")))
    assert r.status_code == 200
    assert r.json()["effect"] == "deny"
    assert r.json()["rule_id"] is None and r.json()["matched"] is False


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**BODY, "action": "peek"}, 400),
        ({**BODY, "principal": {"role": "mayor", "org": "x"}}, 400),
        ({**BODY, "resource": {"grade": "L9"}}, 400),
        ({**BODY, "resource": {"grade": "L1", "colour": "red"}}, 422),
        ({"principal": {"role": "consumer"}, "action": "read_raw"}, 422),
        ({**BODY, "action": 5}, 422),
        ([1, 2, 3], 422),
    ],
)
def test_decide_bad_input(own: tuple[Container, TestClient], body: Any, status: int) -> None:
    container, client = own
    r = client.post("/v1/policy/decide", json=body, headers=auth(_key(container, "manager")))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["kind"] == "invalid" and error["request_id"]


def test_show_policy(own: tuple[Container, TestClient]) -> None:
    container, client = own
    r = client.get("/v1/policy", headers=auth(_key(container, "consumer")))
    assert r.status_code == 200
    info = r.json()
    assert info["version"] == container.policy.version and len(info["version"]) == 64
    assert [g["id"] for g in info["grades"]] == ["L1", "L2", "L3", "L4", "core"]
    assert info["rules"] >= 30 and "roles.yaml" in info["files"]


def test_reload_by_officer(own: tuple[Container, TestClient], policy_copy: PolicyCopy) -> None:
    container, client = own
    officer = auth(_key(container, "officer"))
    before = container.policy.version
    assert (
        client.post("/v1/policy/reload", headers=auth(_key(container, "manager"))).status_code
        == 403
    )
    policy_copy.replace("roles.yaml", "grades: [L1, L2, L3]", "grades: [L1, L2, L5]")
    r = client.post("/v1/policy/reload", headers=officer)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["active_version"] == before and "stays active" in error["message"]
    assert any("grade 'L5' is not defined" in p for p in error["problems"])
    assert client.get("/v1/policy", headers=officer).json()["version"] == before
    policy_copy.replace("roles.yaml", "grades: [L1, L2, L5]", "grades: [L1, L2, L3, L4]")
    policy_copy.replace(
        "roles.yaml",
        "    grades: [L4]\n    effect: approval_required\n    obligations:\n      mask_profile: 共享\n      row_limit: 1000\n",
        "    grades: [L4]\n    effect: approval_required\n    obligations:\n      mask_profile: 共享\n      row_limit: 1001\n",
    )
    r = client.post("/v1/policy/reload", headers=officer)
    assert r.status_code == 200, r.text
    assert r.json()["changed"] is True and r.json()["previous_version"] == before


def test_files_changed_on_disk_are_picked_up_without_a_reload(
        tmp_path: Path, policy_copy: PolicyCopy) -> None:
    """QUANGUARD_POLICY_CHECK_SECONDS after an edit, the next decision runs on the new
    files; a manual reload afterwards finds nothing left to change and says so."""
    container = build_container(make_settings(tmp_path, policy_dir=policy_copy.root,
                                              policy_check_seconds=0.2))
    try:
        with TestClient(create_app(container)) as client:
            officer = auth(_key(container, "officer"))
            before = client.get("/v1/policy", headers=officer).json()["version"]
            policy_copy.replace("roles.yaml", "epsilon_cap: 2.0", "epsilon_cap: 1.25")
            time.sleep(0.3)
            after = client.get("/v1/policy", headers=officer).json()["version"]
            assert after != before
            r = client.post("/v1/policy/reload", headers=officer)
            assert r.status_code == 200, r.text
            assert r.json()["changed"] is False
            assert r.json()["version"] == r.json()["previous_version"] == after
    finally:
        container.close()


def test_decide_and_reload_are_audited(own: tuple[Container, TestClient]) -> None:
    from monitor.store import AuditStore

    container, client = own
    manager = auth(_key(container, "manager"))
    assert client.post("/v1/policy/decide", json=BODY, headers=manager).status_code == 200
    assert (
        client.post("/v1/policy/reload", headers=auth(_key(container, "officer"))).status_code
        == 200
    )
    with container.session() as session:
        bodies = [e.body for e in AuditStore().iter_range(session)]
    decided = [b for b in bodies if '"policy_decide"' in b]
    reloaded = [b for b in bodies if '"policy_reload"' in b]
    assert len(decided) == 1 and len(reloaded) == 1
    assert "consumer-aggregate-l3" in decided[0] and "approval_required" in decided[0]
