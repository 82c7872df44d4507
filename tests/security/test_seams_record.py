"""Issue 11, findings 5, 6 and 7 as attacks: attempts that leave no record, scaffolding that
fails open, and three meanings of "local operator".

Each test here failed on the code before the one gate recorded every request (main at the
time: 90c12a0); see the report of the ``gate`` branch.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from fastapi.testclient import TestClient

from monitor.search import SearchQuery
from quanguard.api.app import create_app
from quanguard.auth import LOCAL_OPERATOR, create_key, revoke_key
from quanguard.container import Container, build_container
from quanguard.errors import Forbidden, InvalidInput
from tests.conftest import POLICY_DIR, make_settings

REPO = Path(__file__).resolve().parents[2]


# -- helpers ----------------------------------------------------------------------------
def events(container: Container) -> list[dict[str, Any]]:
    with container.session() as session:
        return [json.loads(e.body) for e in container.audit.store.iter_range(session)]


def for_request(container: Container, rid: str) -> list[dict[str, Any]]:
    return [e for e in events(container) if e.get("trace", {}).get("id") == rid]


def effect(doc: dict[str, Any]) -> str | None:
    effect: str | None = doc.get("audit", {}).get("effect")
    return effect


def label(doc: dict[str, Any], name: str) -> str | None:
    value: str | None = doc.get("labels", {}).get(name)
    return value


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, Container, dict[str, str]]]:
    container = build_container(make_settings(tmp_path, auth_fail_limit=1_000_000))
    keys: dict[str, str] = {}
    with container.session() as s, s.begin():
        for role in ("consumer", "provider", "auditor", "manager"):
            keys[role] = create_key(s, role=role, org="市人社局", name=f"{role}-1").key
        keys["revoked"] = create_key(s, role="manager", org="市人社局", name="gone").key
    with container.session() as s, s.begin():
        revoke_key(s, "gone")
    # a cheap redactor: these tests are about records, not about the PII analyzer
    container.audit.set_redactor(lambda text: text)
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client, container, keys
    container.close()


def call(client: TestClient, method: str, url: str, key: str | None = None, **kw: Any) -> tuple[int, str]:
    rid = uuid.uuid4().hex
    headers = {"X-Request-ID": rid, **({"Authorization": f"Bearer {key}"} if key else {})}
    r = client.request(method, url, headers=headers, **kw)
    return r.status_code, rid


def one_event(world: tuple[TestClient, Container, dict[str, str]], url: str, role: str,
              status: int) -> dict[str, Any]:
    """GET ``url`` with ``role``'s key: the answer has ``status`` and left exactly one event."""
    client, container, keys = world
    got, rid = call(client, "GET", url, keys[role])
    assert got == status
    (doc,) = for_request(container, rid)
    return doc


# -- finding 5: attempts that leave no record ------------------------------------------
def test_bad_key_leaves_one_anonymous_event_with_the_key_fingerprint(world: tuple[TestClient, Container, dict[str, str]]) -> None:
    client, container, _ = world
    bad = "qg_0badc0de_" + "B" * 43
    status, rid = call(client, "GET", "/v1/whoami", bad)
    assert status == 401
    (doc,) = for_request(container, rid)
    assert doc["user"]["id"] == "anonymous"
    assert effect(doc) == "deny" and doc["event"]["outcome"] == "failure"
    assert label(doc, "http_status") == "401"
    assert label(doc, "key_fingerprint") == hashlib.sha256(bad.encode()).hexdigest()[:12]
    assert bad not in json.dumps(events(container), ensure_ascii=False)


def test_revoked_key_leaves_one_event(world: tuple[TestClient, Container, dict[str, str]]) -> None:
    doc = one_event(world, "/v1/exchange/datasets", "revoked", 401)
    assert effect(doc) == "deny" and label(doc, "key_fingerprint")


def test_invalid_input_leaves_one_error_event(world: tuple[TestClient, Container, dict[str, str]]) -> None:
    doc = one_event(world, "/v1/audit/search?since=not-a-time", "auditor", 400)
    assert effect(doc) == "error" and label(doc, "http_status") == "400"
    assert doc["user"]["id"] != "anonymous" and label(doc, "key_name") == "auditor-1"


def test_unknown_asset_leaves_one_error_event(world: tuple[TestClient, Container, dict[str, str]]) -> None:
    doc = one_event(world, "/v1/assets/nope", "provider", 404)
    assert effect(doc) == "error" and label(doc, "http_status") == "404"
    assert doc["event"]["action"] == "http.get./v1/assets/{asset_id}"


def test_unknown_dataset_leaves_one_event(world: tuple[TestClient, Container, dict[str, str]]) -> None:
    doc = one_event(world, "/v1/exchange/datasets/无此数据集", "consumer", 404)
    assert doc["event"]["outcome"] == "failure"
    assert effect(doc) == "error" and label(doc, "http_status") == "404"


def test_server_error_leaves_one_error_event(world: tuple[TestClient, Container, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    client, container, keys = world
    from quanguard.usecases import scan as scan_uc

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(scan_uc, "assets", broken)
    status, rid = call(client, "GET", "/v1/assets", keys["provider"])
    assert status == 500
    (doc,) = for_request(container, rid)
    assert effect(doc) == "error" and label(doc, "http_status") == "500"


@pytest.mark.parametrize(
    ("role", "url"),
    [
        ("consumer", "/v1/whoami"),
        ("consumer", "/v1/policy"),
        ("provider", "/v1/assets"),
        ("consumer", "/v1/exchange/datasets"),
        ("consumer", "/v1/exchange/jobs"),
    ],
)
def test_metadata_reads_are_recorded(world: tuple[TestClient, Container, dict[str, str]], role: str, url: str) -> None:
    client, container, keys = world
    status, rid = call(client, "GET", url, keys[role])
    assert status == 200
    (doc,) = for_request(container, rid)
    assert effect(doc) == "allow" and doc["event"]["outcome"] == "success"
    assert doc["organization"]["name"] == "市人社局"


def test_a_use_cases_own_event_names_the_http_status(world: tuple[TestClient, Container, dict[str, str]]) -> None:
    """The mask use case records its own event (no generic one): it names the status too."""
    client, container, keys = world
    rid = uuid.uuid4().hex
    r = client.post("/v1/mask", json={"records": [{"姓名": "张三", "电话": "13812345678"}]},
                    headers={"X-Request-ID": rid, "Authorization": f"Bearer {keys['provider']}"})
    assert r.status_code == 200, r.text
    (doc,) = for_request(container, rid)
    assert not doc["event"]["action"].startswith("http.")
    assert label(doc, "http_status") == "200" and effect(doc) == "allow"


def test_role_denial_is_found_by_effect_deny(world: tuple[TestClient, Container, dict[str, str]]) -> None:
    client, container, keys = world
    status, rid = call(client, "GET", "/v1/audit/search", keys["consumer"])
    assert status == 403
    (doc,) = for_request(container, rid)
    assert effect(doc) == "deny" and label(doc, "http_status") == "403"
    from quanguard.auth import Principal
    from quanguard.usecases import audit as audit_uc

    auditor = Principal(id="a", name="a", role="auditor", org="市审计局")
    found = audit_uc.search(container, auditor, SearchQuery(effect="deny", size=100))
    assert rid in {e.request_id for e in found.hits}


def test_a_failed_audit_write_fails_the_request(world: tuple[TestClient, Container, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    client, container, keys = world

    def down(*_a: Any, **_k: Any) -> int:
        raise RuntimeError("audit store down")

    monkeypatch.setattr(container.audit, "record", down)
    r = client.get("/v1/whoami", headers={"Authorization": f"Bearer {keys['consumer']}"})
    assert r.status_code == 503
    assert "consumer-1" not in r.text  # the answer did not leave without its record


def test_anonymous_attempts_are_throttled_not_lost(world: tuple[TestClient, Container, dict[str, str]]) -> None:
    client, container, _ = world
    assert container._request_recorder is not None
    container._request_recorder.throttle.window = 3600.0
    rids = [call(client, "GET", "/v1/whoami", f"qg_1234abcd_{i:043d}")[1] for i in range(5)]
    recorded = [e for rid in rids for e in for_request(container, rid)]
    assert len(recorded) == 1  # one event per source per window
    container._request_recorder.throttle.window = 0.0
    _, rid = call(client, "GET", "/v1/whoami", "qg_1234abcd_" + "C" * 43)
    (doc,) = for_request(container, rid)
    assert label(doc, "suppressed") == "4"


# -- finding 6: scaffolding that fails open --------------------------------------------
PROJECT = ("quanguard", "monitor", "desensitize", "watermark", "exchange")


def _hiding_sites(files: list[Path]) -> list[str]:
    """``try: import <a part of this project> ... except ImportError`` anywhere."""
    found = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Try):
                continue
            catches = any(
                h.type is not None and "ImportError" in ast.unparse(h.type) for h in node.handlers
            )
            imports_ours = any(
                (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] in PROJECT)
                or (isinstance(n, ast.Import) and any(a.name.split(".")[0] in PROJECT for a in n.names))
                or (isinstance(n, ast.Attribute) and n.attr == "audit")
                for stmt in node.body for n in ast.walk(stmt)
            )
            if catches and imports_ours:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_no_except_import_error_hides_a_part_of_the_project() -> None:
    assert _hiding_sites(sorted((REPO / "quanguard").rglob("*.py"))) == []


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          timeout=120, check=False)


def test_a_missing_scan_area_fails_the_record_not_an_unredacted_trail(tmp_path: Path) -> None:
    """Before: ``AuditService.redactor()`` returned None and purposes were stored as typed.
    The scanner loads on the first text that needs it; without the scan area that record
    fails (ImportError) and nothing is stored."""
    code = f"""
import sys
import sqlalchemy as sa
from pathlib import Path
from tests.conftest import make_settings
from quanguard.container import build_container
from quanguard.auth import LOCAL_OPERATOR
from monitor.store import EVENTS
c = build_container(make_settings(Path({str(tmp_path)!r})))
sys.modules['quanguard.services.scan'] = None
try:
    with c.unit_of_work() as s:
        c.audit.record(s, actor=LOCAL_OPERATOR, action='mask',
                       purpose='核查张三的身份证号110101199003077777')
except ImportError as exc:
    assert 'quanguard.services.scan' in str(exc), exc
    with c.session() as s:
        sys.exit(3 if s.execute(sa.select(sa.func.count()).select_from(EVENTS)).scalar() == 0 else 4)
sys.exit(0)
"""
    r = _run(code)
    assert r.returncode == 3, r.stderr[-2000:]


def test_key_issuance_without_the_audit_trail_fails(tmp_path: Path) -> None:
    """Before: ``issue_key`` skipped the record when the audit module could not be imported."""
    code = f"""
import sys
from tests.conftest import make_settings
from pathlib import Path
from quanguard.container import build_container
from quanguard.auth import LOCAL_OPERATOR
from quanguard.usecases.keys import issue_key
c = build_container(make_settings(Path({str(tmp_path)!r})))
sys.modules['quanguard.services.audit'] = None
try:
    issue_key(c, LOCAL_OPERATOR, role='consumer', org='x', name='silent')
except ImportError:
    sys.exit(3)
sys.exit(0)
"""
    r = _run(code)
    assert r.returncode == 3, r.stderr[-2000:]


# -- finding 7: the local operator is a principal like any other -----------------------
def _policy_with(tmp_path: Path, rule: str) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, folder)
    roles = folder / "roles.yaml"
    roles.write_text(roles.read_text(encoding="utf-8").replace("rules:\n", "rules:\n" + rule, 1),
                     encoding="utf-8")
    shutil.rmtree(folder / "tests")  # the shipped cases do not know the extra rule
    (folder / "tests").mkdir()
    return folder


_DENY_LEDGER = """  - id: ledger-stays-closed
    description: 机密台账任何人不得扫描、脱敏或加水印（测试用）。
    priority: 1000
    roles: "*"
    actions: [scan, mask, watermark_embed]
    conditions:
      datasets: [机密台账]
    effect: deny

"""

_DENY_REPORTS = """  - id: no-reports-here
    description: 本机的人不得导入上报记录（测试用）。
    priority: 1000
    roles: "*"
    actions: [report_events]
    conditions:
      orgs: [本机]
    effect: deny

"""


def _table(path: Path) -> Path:
    rows = 1000
    pacsv.write_csv(pa.table({
        "编号": [f"A{i:05d}" for i in range(rows)],
        "金额": [float(i * 13 % 997) for i in range(rows)],
        "备注": ["正常" if i % 3 else "复核" for i in range(rows)],
    }), path)
    return path


@pytest.fixture
def denied_ledger(tmp_path: Path) -> Iterator[Container]:
    container = build_container(make_settings(tmp_path, policy_dir=_policy_with(tmp_path, _DENY_LEDGER)))
    container.audit.set_redactor(lambda text: text)
    yield container
    container.close()


def test_local_scan_obeys_an_explicit_deny(denied_ledger: Container, tmp_path: Path) -> None:
    """Before: scan overrode even an explicit deny for the local operator."""
    from quanguard.usecases import scan as uc

    src = _table(tmp_path / "机密台账.csv")
    with pytest.raises(Forbidden):
        uc.scan_table(denied_ledger, LOCAL_OPERATOR, str(src))
    denied = [e for e in events(denied_ledger) if e["event"]["action"] == "scan"]
    assert [effect(e) for e in denied] == ["deny"]


def test_local_watermark_obeys_an_explicit_deny(denied_ledger: Container, tmp_path: Path) -> None:
    """Before: watermark overrode even an explicit deny for the local operator."""
    from quanguard.usecases import watermark as uc

    src = _table(tmp_path / "机密台账.csv")
    with pytest.raises(Forbidden):
        uc.embed(denied_ledger, LOCAL_OPERATOR, str(src), str(tmp_path / "out.csv"), recipient="某局")
    assert not (tmp_path / "out.csv").exists()


def test_local_mask_is_refused_when_no_rule_allows_it(tmp_path: Path) -> None:
    """Before: mask let the local operator through whenever no rule matched."""
    import yaml

    from quanguard.usecases import mask as uc

    folder = _policy_with(tmp_path, "")
    roles = folder / "roles.yaml"
    doc = yaml.safe_load(roles.read_text(encoding="utf-8"))
    # a policy without any rule for the machine's operator: default deny must hold
    doc["rules"] = [r for r in doc["rules"] if "operator" not in r["roles"]]
    roles.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    container = build_container(make_settings(tmp_path, policy_dir=folder))
    container.audit.set_redactor(lambda t: t)
    try:
        src = _table(tmp_path / "普通台账.csv")
        with pytest.raises(Forbidden):
            uc.mask_file(container, LOCAL_OPERATOR, str(src), str(tmp_path / "m.csv"))
        assert not (tmp_path / "m.csv").exists()
    finally:
        container.close()


def test_local_ingest_asks_the_policy(tmp_path: Path) -> None:
    """Before: usecases/audit.py skipped policy for the local operator."""
    from quanguard.usecases import audit as uc

    container = build_container(make_settings(tmp_path, policy_dir=_policy_with(tmp_path, _DENY_REPORTS)))
    try:
        line = json.dumps({"ts": "2026-11-30T08:00:00Z", "actor": {"id": "u1", "role": "consumer", "org": "某局"},
                           "action": "query", "dataset": "d", "decision": "allow"})
        with pytest.raises(Forbidden):
            uc.ingest(container, LOCAL_OPERATOR, [line])
        assert [e["event"]["action"] for e in events(container)] == ["report_events"]
    finally:
        container.close()


def test_the_local_operator_is_a_role_of_its_own_with_explicit_rules(container: Container) -> None:
    assert LOCAL_OPERATOR.role == "operator"
    for action in ("scan", "mask", "watermark_embed", "watermark_detect", "report_events",
                   "audit_verify", "key_admin"):
        decision = container.policy.decide(LOCAL_OPERATOR, action, _resource())
        assert decision.effect == "allow" and decision.rule_id, action
    for action in ("unmask", "read_raw", "audit_search", "psi", "approve"):
        decision = container.policy.decide(LOCAL_OPERATOR, action, _resource("L2"))
        assert decision.effect == "deny" and decision.rule_id, action


def _resource(grade: str | None = None) -> Any:
    from quanguard.policy.model import Resource

    return Resource(grade=grade, dataset="台账", owner_org="本机")


def test_no_key_can_carry_the_operator_role(container: Container) -> None:
    with pytest.raises(InvalidInput), container.session() as s, s.begin():
        create_key(s, role="operator", org="x", name="sneaky")


def test_no_code_path_names_the_local_operator() -> None:
    """The local operator is decided by policy alone: no ``principal.id == ...`` anywhere."""
    hits = []
    for path in (REPO / "quanguard").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "auth.py" and ("local-operator" in text or "LOCAL_ID" in text):
            hits.append(str(path.relative_to(REPO)))
    assert hits == []


def test_malformed_body_with_a_valid_key_names_the_key_holder(world: tuple[TestClient, Container, dict[str, str]]) -> None:
    """FastAPI parses the body before the route's dependencies read the key; the event of
    such a request still names the holder (it is not folded into anonymous attempts)."""
    client, container, keys = world
    for _ in range(3):
        rid = uuid.uuid4().hex
        r = client.post("/v1/policy/decide", content=b"{not json",
                        headers={"X-Request-ID": rid, "Authorization": f"Bearer {keys['manager']}",
                                 "content-type": "application/json"})
        assert r.status_code in (400, 422)
        (doc,) = for_request(container, rid)
        assert doc["user"]["roles"] == ["manager"] and effect(doc) == "error"
        assert label(doc, "key_name") == "manager-1"
