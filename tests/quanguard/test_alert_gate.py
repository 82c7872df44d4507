"""Reading and changing alerts is asked of the one gate (actions ``alert_read`` and
``alert_update`` in ``policies/roles.yaml``): the use cases refuse a role the policy does
not allow, whoever calls them, with a recorded ``deny`` event; the roles that may do it
(auditor, manager, officer, admin) still do, over HTTP and in the console."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.events import AuditEvent
from quanguard.api.app import create_app
from quanguard.auth import ROLES, Principal
from quanguard.container import Container, build_container
from quanguard.errors import Forbidden
from quanguard.policy.model import Resource
from quanguard.usecases import audit as uc
from tests.conftest import POLICY_DIR, auth, make_settings
from tests.console.test_console_login_events import console_sign_in, csrf_of

ALLOWED = ("auditor", "manager", "officer", "admin")
CONSOLE = ("auditor", "manager", "admin")


def _principal(role: str) -> Principal:
    return Principal(id=f"p-{role}", name=f"{role}-1", role=role, org="市大数据局")


def _raise_alert(container: Container) -> str:
    """Six denials of one actor in a row, reported: the ``denial-burst`` alert opens."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    lines = [json.dumps({"ts": (start + timedelta(seconds=i)).isoformat(),
                         "actor": {"id": "prober", "role": "consumer", "org": "某公司"},
                         "action": "query", "dataset": "户籍人口", "decision": "deny"},
                        ensure_ascii=False) for i in range(6)]
    uc.ingest(container, _principal("reporter"), lines)
    with container.session() as session:
        alerts = container.alerts.list(session, status="open", rule="denial-burst")
    assert alerts
    return alerts[0].id


def _last_event(container: Container) -> AuditEvent:
    with container.session() as session:
        return container.audit.store.get(session, container.audit.store.head(session).seq)


def _assert_denied(event: AuditEvent, action: str, role: str) -> None:
    assert event.action == action
    assert event.actor.id == f"p-{role}" and event.actor.role == role
    assert event.decision is not None and event.decision.effect == "deny"
    assert event.outcome == "failure"


def _alert_status(container: Container, alert_id: str) -> str:
    with container.session() as session:
        return container.alerts.get(session, alert_id).status


@pytest.mark.parametrize("role", ["consumer", "provider", "reporter", "operator"])
def test_the_use_cases_refuse_a_role_the_policy_does_not_allow(container: Container,
                                                               role: str) -> None:
    alert_id = _raise_alert(container)
    with pytest.raises(Forbidden):
        uc.list_alerts(container, _principal(role))
    _assert_denied(_last_event(container), "alert_read", role)
    with pytest.raises(Forbidden):
        uc.update_alert(container, _principal(role), alert_id, status="closed", note="不该关")
    _assert_denied(_last_event(container), "alert_update", role)
    assert _alert_status(container, alert_id) == "open"


@pytest.mark.parametrize("role", ALLOWED)
def test_the_use_cases_serve_the_roles_the_policy_allows(container: Container, role: str) -> None:
    alert_id = _raise_alert(container)
    assert alert_id in [a.id for a in uc.list_alerts(container, _principal(role))]
    alert = uc.update_alert(container, _principal(role), alert_id, status="acknowledged")
    assert alert.status == "acknowledged"
    event = _last_event(container)
    assert event.action == "alert_update" and event.actor.role == role
    assert event.decision is not None and event.decision.effect == "allow"
    assert event.decision.rule_id == "alert-handling"


def test_the_shipped_policy_allows_exactly_the_alert_handlers(container: Container) -> None:
    for action in ("alert_read", "alert_update"):
        allowed = {role for role in ROLES
                   if container.policy.decide(_principal(role), action, Resource()).effect == "allow"}
        assert allowed == set(ALLOWED), action


_DENY_OFFICERS = """
  - id: officer-no-alerts
    description: 本地规定：合规官不处理告警（交由审计员）。
    priority: 900
    roles: [officer]
    actions: [alert_read, alert_update]
    effect: deny
"""


@pytest.fixture
def officers_denied(tmp_path: Path) -> Iterator[Container]:
    """A service whose ``roles.yaml`` a compliance officer edited to deny officers alerts."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policies)
    with (policies / "roles.yaml").open("a", encoding="utf-8") as fh:
        fh.write(_DENY_OFFICERS)
    c = build_container(make_settings(tmp_path, policy_dir=policies))
    yield c
    c.close()


def _make_key(container: Container, role: str) -> str:
    from quanguard.auth import create_key

    with container.session() as session, session.begin():
        return create_key(session, role=role, org="市大数据局", name=f"{role}-key").key


def test_an_edited_policy_refuses_officers_over_http(officers_denied: Container) -> None:
    alert_id = _raise_alert(officers_denied)
    officer, auditor = _make_key(officers_denied, "officer"), _make_key(officers_denied, "auditor")
    with TestClient(create_app(officers_denied)) as client:
        r = client.get("/v1/alerts", headers=auth(officer))
        assert r.status_code == 403, r.text
        assert "officer-no-alerts" in json.dumps(r.json())
        denied = _last_event(officers_denied)
        assert denied.action == "alert_read" and denied.actor.role == "officer"
        assert denied.decision is not None and denied.decision.effect == "deny"
        assert denied.decision.rule_id == "officer-no-alerts"
        r = client.patch(f"/v1/alerts/{alert_id}", json={"status": "closed"},
                         headers=auth(officer))
        assert r.status_code == 403, r.text
        denied = _last_event(officers_denied)
        assert denied.action == "alert_update" and denied.decision is not None
        assert denied.decision.rule_id == "officer-no-alerts"
        assert _alert_status(officers_denied, alert_id) == "open"
        # the other roles keep their access
        r = client.get("/v1/alerts", headers=auth(auditor))
        assert r.status_code == 200 and alert_id in [a["id"] for a in r.json()["alerts"]]


@pytest.mark.parametrize("role", ALLOWED)
def test_the_alert_handlers_list_and_update_alerts_over_http(
        container: Container, client: Any, make_key: Callable[..., tuple[str, Principal]],
        role: str) -> None:
    alert_id = _raise_alert(container)
    key, _ = make_key(role)
    r = client.get("/v1/alerts", params={"status": "open"}, headers=auth(key))
    assert r.status_code == 200, r.text
    assert alert_id in [a["id"] for a in r.json()["alerts"]]
    r = client.patch(f"/v1/alerts/{alert_id}", json={"status": "acknowledged", "note": "在查"},
                     headers=auth(key))
    assert r.status_code == 200 and r.json()["status"] == "acknowledged", r.text


@pytest.mark.parametrize("role", ["consumer", "provider", "reporter"])
def test_other_roles_are_refused_alerts_over_http(
        client: Any, make_key: Callable[..., tuple[str, Principal]], role: str) -> None:
    key, _ = make_key(role)
    assert client.get("/v1/alerts", headers=auth(key)).status_code == 403
    assert client.patch("/v1/alerts/a1", json={"status": "closed"},
                        headers=auth(key)).status_code == 403


@pytest.mark.parametrize("role", CONSOLE)
def test_the_console_roles_list_and_update_alerts(
        container: Container, client: Any, make_key: Callable[..., tuple[str, Principal]],
        role: str) -> None:
    alert_id = _raise_alert(container)
    key, _ = make_key(role)
    assert console_sign_in(client, key).status_code == 303
    page = client.get("/console/alerts", params={"status": "open"})
    assert page.status_code == 200 and alert_id in page.text
    r = client.post(f"/console/alerts/{alert_id}",
                    data={"csrf": csrf_of(page.text), "status": "acknowledged", "note": "已看"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    assert _alert_status(container, alert_id) == "acknowledged"


def test_officers_still_use_the_api_not_the_console(
        client: Any, make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, _ = make_key("officer")
    assert console_sign_in(client, key).status_code == 403
