"""Every console sign-in leaves one ``login`` event (without a browser): ``allow`` for a
role the policy admits (action ``console_sign_in`` of ``policies/roles.yaml``), ``deny``
for another role (the deciding rule and policy version, the policy's reason) and for a bad
key (the actor ``anonymous``, the key's fingerprint, never the key)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from monitor.events import AuditEvent
from quanguard.auth import ROLES, Principal, key_fingerprint
from quanguard.container import Container
from quanguard.errors import Forbidden
from quanguard.gate import RequestContext
from quanguard.usecases.console import sign_in


def csrf_of(html: str) -> str:
    """The forms token of a console page."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def console_sign_in(client: Any, key: str) -> Any:
    """Post the sign-in form with ``key`` (not following the redirect)."""
    token = csrf_of(client.get("/console/login").text)
    return client.post("/console/login", data={"key": key, "csrf": token},
                       follow_redirects=False)


def _logins(container: Container) -> list[AuditEvent]:
    store = container.audit.store
    with container.session() as session:
        events = [store.get(session, row.seq) for row in store.iter_range(session, 1)]
    return [e for e in events if e.action == "login"]


def test_a_console_role_signing_in_is_allowed_and_recorded(
        container: Container, client: Any, make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, me = make_key("auditor")
    assert console_sign_in(client, key).status_code == 303
    (event,) = _logins(container)
    assert event.actor.id == me.id and event.actor.role == "auditor"
    assert event.decision is not None and event.decision.effect == "allow"
    assert event.outcome == "success"
    assert dict(event.labels) == {"channel": "console", "key_name": me.name}
    assert event.request_id and event.source_ip


def test_another_role_is_refused_and_recorded(
        container: Container, client: Any, make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, me = make_key("consumer")
    assert console_sign_in(client, key).status_code == 403
    (event,) = _logins(container)
    assert event.actor.id == me.id and event.actor.role == "consumer"
    assert event.decision is not None and event.decision.effect == "deny"
    assert event.decision.policy_version == container.policy.active.version
    assert event.outcome == "failure" and event.reason is not None
    assert "role=consumer action=console_sign_in" in event.reason
    assert dict(event.labels) == {"channel": "console", "key_name": me.name}


def test_a_bad_key_is_refused_and_recorded_by_its_fingerprint(
        container: Container, client: Any) -> None:
    bad = "qg_deadbeef_" + "z" * 43
    assert console_sign_in(client, bad).status_code == 401
    (event,) = _logins(container)
    assert event.actor.id == "anonymous"
    assert event.decision is not None and event.decision.effect == "deny"
    assert event.outcome == "failure"
    assert event.labels["key_fingerprint"] == key_fingerprint(bad)
    assert event.labels["channel"] == "console" and event.reason
    assert bad not in event.canonical_bytes().decode()


def test_the_sign_in_use_case_admits_exactly_the_console_roles(container: Container) -> None:
    ctx = RequestContext("req-1", "10.0.0.7")
    admitted: set[str] = set()
    for role in ROLES:
        who = Principal(id=f"p-{role}", name=role, role=role, org="市大数据局")
        try:
            sign_in(container, who, ctx)
            admitted.add(role)
        except Forbidden:
            pass
        event = _logins(container)[-1]
        assert event.actor.id == who.id and event.request_id == "req-1"
        assert event.decision is not None
        assert event.decision.effect == ("allow" if role in admitted else "deny"), role
    assert admitted == {"auditor", "manager", "admin"}
    with pytest.raises(Forbidden):
        sign_in(container, Principal(id="p-x", name="x", role="officer", org="o"), ctx)


def test_who_may_sign_in_is_the_policy_s_decision(tmp_path: Any) -> None:
    """An officer's rule admitting officers to the console admits them, with no code
    change; the event names the rule."""
    import shutil

    from quanguard.container import build_container
    from tests.conftest import POLICY_DIR, make_settings

    policies = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policies)
    with (policies / "roles.yaml").open("a", encoding="utf-8") as fh:
        fh.write("""
  - id: officer-console
    description: 合规官也用控制台做监督检查。
    priority: 100
    roles: [officer]
    actions: [console_sign_in]
    effect: allow
""")
    container = build_container(make_settings(tmp_path, policy_dir=policies))
    try:
        officer = Principal(id="p-officer", name="officer", role="officer", org="市网信办")
        sign_in(container, officer, RequestContext("req-2", "10.0.0.8"))
        event = _logins(container)[-1]
        assert event.actor.id == "p-officer" and event.decision is not None
        assert event.decision.effect == "allow" and event.decision.rule_id == "officer-console"
        with pytest.raises(Forbidden):
            sign_in(container, Principal(id="p-c", name="c", role="consumer", org="o"),
                    RequestContext("req-3", None))
    finally:
        container.close()


def test_a_refused_holder_reads_whom_the_policy_admits(
        client: Any, make_key: Callable[..., tuple[str, Principal]]) -> None:
    r = console_sign_in(client, make_key("provider")[0])
    assert r.status_code == 403
    assert "role &#39;provider&#39;" in r.text or "role 'provider'" in r.text
    assert "auditors, managers and administrators" in r.text


def test_a_session_ends_when_a_reload_stops_admitting_its_role(tmp_path: Any) -> None:
    """Signed in as a manager; compliance then removes managers from ``console-sign-in``
    and reloads. The manager's open session must not outlive the policy: the next page is
    refused (back to sign-in), the refusal is recorded once, naming the new policy
    version, and every session of that key is gone. Another admitted role keeps its
    session, and the API key itself still works for what the policy allows."""
    import shutil

    from fastapi.testclient import TestClient

    from quanguard.api.app import create_app
    from quanguard.auth import create_key
    from quanguard.console.sessions import get_store
    from quanguard.container import build_container
    from tests.conftest import POLICY_DIR, auth, make_settings

    policies = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policies)
    container = build_container(make_settings(tmp_path, policy_dir=policies))
    try:
        with container.session() as session, session.begin():
            manager = create_key(session, role="manager", org="市大数据局", name="mgr")
            auditor = create_key(session, role="auditor", org="市大数据局", name="aud")
        app = create_app(container)
        with TestClient(app) as mc, TestClient(app) as ac:
            assert console_sign_in(mc, manager.key).status_code == 303
            assert console_sign_in(ac, auditor.key).status_code == 303
            assert mc.get("/console/alerts", follow_redirects=False).status_code == 200
            # asking again records nothing while the policy admits the role (one sign-in)
            assert len([e for e in _logins(container)
                        if e.actor.id == manager.principal.id]) == 1
            before = container.policy.version
            roles = policies / "roles.yaml"
            text = roles.read_text(encoding="utf-8")
            old = "    roles: [auditor, manager, admin]\n    actions: [console_sign_in]"
            assert old in text
            roles.write_text(text.replace(old, old.replace("manager, ", "")), encoding="utf-8")
            assert container.policy.reload().ok and container.policy.version != before

            refused = mc.get("/console/alerts", follow_redirects=False)
            assert refused.status_code == 303
            assert refused.headers["location"].endswith("/console/login")
            ended = [e for e in _logins(container) if e.actor.id == manager.principal.id
                     and e.decision is not None and e.decision.effect == "deny"]
            assert len(ended) == 1
            (event,) = ended
            assert event.decision is not None
            assert event.decision.policy_version == container.policy.version
            assert event.labels["channel"] == "console" and event.labels["session"] == "ended"
            # the session is gone, not only refused once: the next request does not decide again
            assert mc.get("/console/search", follow_redirects=False).status_code == 303
            assert len([e for e in _logins(container)
                        if e.actor.id == manager.principal.id
                        and e.decision is not None and e.decision.effect == "deny"]) == 1
            assert len(get_store(container)) == 1  # the auditor's
            assert ac.get("/console/alerts", follow_redirects=False).status_code == 200
            # a fresh sign-in is refused and says whom the policy admits now
            again = console_sign_in(mc, manager.key)
            assert again.status_code == 403 and "auditors and administrators" in again.text
            # the key's API access is the policy's per action, unchanged by the console rule
            assert mc.get("/v1/alerts", headers=auth(manager.key)).status_code == 200
    finally:
        container.close()
