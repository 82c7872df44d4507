"""The investigation API: names in events, one event by seq, facets, CSV/NDJSON exports
(capped, audited, safe to open in a spreadsheet)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from monitor.search import SearchQuery
from monitor.sql_search import SqlSearchBackend
from quanguard.container import Container
from tests.conftest import auth
from tests.console.conftest import _ensure_monitor_schema


def _reporter_post(client: Any, key: str, **event: Any) -> int:
    line = {"ts": "2026-11-26T10:00:00+08:00", "actor": {"id": "ext-1", "role": "consumer",
                                                        "org": "市人社局", "name": "Ext App"},
            "action": "query", "dataset": "社保缴纳", "grade": "L3", "decision": "allow",
            "source_ip": "10.20.30.40", **event}
    resp = client.post("/v1/events", content=json.dumps(line, ensure_ascii=False).encode(),
                       headers=auth(key))
    assert resp.status_code == 201, resp.text
    return int(resp.json()["seq"])


@pytest.fixture
def trail(container: Container, client: Any, make_key: Callable[..., Any]) -> dict[str, Any]:
    _ensure_monitor_schema(container)
    reporter, _ = make_key("reporter", org="人社系统")
    auditor, me = make_key("auditor", name="审计员-王")
    seqs = [
        _reporter_post(client, reporter, purpose='=HYPERLINK("http://evil.example/x","点我")'),
        _reporter_post(client, reporter, purpose="+cmd|' /C calc'!A0", decision="deny"),
        _reporter_post(client, reporter, purpose="-2+3", source_ip="192.168.7.9"),
        _reporter_post(client, reporter, purpose="@SUM(1)", action="download"),
        _reporter_post(client, reporter, purpose="\tTAB", actor={
            "id": "ext-2", "role": "provider", "org": "市卫健委"}),
        _reporter_post(client, reporter, purpose="正常用途 normal"),
    ]
    return {"key": auditor, "me": me, "seqs": seqs}


def test_every_event_names_its_actor(client: Any, trail: dict[str, Any]) -> None:
    # The auditor's own search is recorded with the key's name and org at the time.
    resp = client.get("/v1/audit/search", params={"actor": trail["me"].id},
                      headers=auth(trail["key"]))
    resp = client.get("/v1/audit/search", params={"action": "audit_search"},
                      headers=auth(trail["key"]))
    doc = resp.json()["hits"][0]
    assert doc["user"] == {"id": trail["me"].id, "name": "审计员-王", "roles": ["auditor"]}
    assert doc["organization"]["name"] == "市大数据局"
    # A name finds the actor too, case-insensitively.
    resp = client.get("/v1/audit/search", params={"actor": "ext app"},
                      headers=auth(trail["key"]))
    assert resp.json()["total"] == 5


def test_one_event_by_seq(client: Any, trail: dict[str, Any]) -> None:
    seq = trail["seqs"][2]
    resp = client.get(f"/v1/audit/events/{seq}", headers=auth(trail["key"]))
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["event"]["sequence"] == seq
    assert doc["user"]["name"] == "Ext App" and doc["source"]["ip"] == "192.168.7.9"
    assert client.get("/v1/audit/events/999999", headers=auth(trail["key"])).status_code == 404
    recorded = client.get("/v1/audit/search", params={"action": "audit_event"},
                          headers=auth(trail["key"])).json()
    assert {h["labels"]["seq"] for h in recorded["hits"]} == {str(seq), "999999"}


def test_facets_and_filters_that_used_to_return_nothing(client: Any,
                                                        trail: dict[str, Any]) -> None:
    h = auth(trail["key"])
    resp = client.get("/v1/audit/search", headers=h, params={
        "dataset": "社保缴纳", "facets": "actor,org,source_ip", "exclude": "effect:deny"})
    body = resp.json()
    assert body["total"] == 5
    assert body["facets"]["actor"][0] == {"key": "ext-1", "count": 4}
    assert {b["key"] for b in body["facets"]["source_ip"]} == {"10.20.30.40", "192.168.7.9"}
    assert client.get("/v1/audit/search", headers=h, params={"effect": "DENY"}).json(
        )["total"] == 1
    assert client.get("/v1/audit/search", headers=h, params={
        "source_ip": "10.20.0.0/16", "dataset": "社保缴纳"}).json()["total"] == 5
    bad = client.get("/v1/audit/search", headers=h, params={"effect": "denied"})
    assert bad.status_code == 400 and "not one of" in bad.text
    bad = client.get("/v1/audit/search", headers=h, params={"facets": "purpose"})
    assert bad.status_code == 400


def test_csv_export_neutralises_formulas(client: Any, trail: dict[str, Any]) -> None:
    resp = client.get("/v1/audit/search", headers=auth(trail["key"]),
                      params={"dataset": "社保缴纳", "format": "csv", "sort": "seq"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert len(rows) == 6
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    purposes = [r["purpose"] for r in rows]
    assert purposes[0].startswith("'=HYPERLINK(") and purposes[2] == "'-2+3"
    assert purposes[4] == "'\tTAB" and purposes[5] == "正常用途 normal"
    assert rows[0]["user.name"] == "Ext App"


def test_ndjson_export_and_its_audit_event(client: Any, container: Container,
                                           trail: dict[str, Any]) -> None:
    resp = client.get("/v1/audit/search", headers=auth(trail["key"]),
                      params={"dataset": "社保缴纳", "format": "ndjson"})
    lines = resp.content.decode().splitlines()
    assert len(lines) == 6 and all(json.loads(x)["audit"]["dataset"] == "社保缴纳" for x in lines)
    got = SqlSearchBackend(container.session).search(SearchQuery(action="audit_export"))
    assert got.total == 1
    event = got.hits[0]
    assert event.rows == 6 and event.labels["format"] == "ndjson"
    assert event.labels["dataset"] == "社保缴纳" and event.actor.id == trail["me"].id


def test_export_over_the_cap_is_refused_and_recorded(tmp_path: Any,
                                                     make_key: Callable[..., Any]) -> None:
    from fastapi.testclient import TestClient

    from quanguard.api.app import create_app
    from quanguard.container import build_container
    from tests.conftest import make_settings

    container = build_container(make_settings(tmp_path, export_max_rows=3))
    try:
        _ensure_monitor_schema(container)
        with TestClient(create_app(container)) as client:
            from quanguard.auth import create_key

            with container.session() as s, s.begin():
                reporter = create_key(s, role="reporter", org="x", name="rep").key
                auditor = create_key(s, role="auditor", org="x", name="aud").key
            for i in range(4):
                _reporter_post(client, reporter, purpose=f"batch-{i}")
            resp = client.get("/v1/audit/search", headers=auth(auditor),
                              params={"action": "query", "format": "csv"})
            assert resp.status_code == 413
            assert "capped at 3" in resp.json()["error"]["message"]
            ok = client.get("/v1/audit/search", headers=auth(auditor),
                            params={"action": "query", "format": "csv", "q": "batch-1"})
            assert ok.status_code == 200
        got = SqlSearchBackend(container.session).search(
            SearchQuery(action="audit_export", sort="seq"))
        assert [h.outcome for h in got.hits] == ["failure", "success"]
        assert got.hits[0].rows == 4 and got.hits[0].labels["cap"] == "3"
    finally:
        container.close()


def test_export_format_must_be_known(client: Any, trail: dict[str, Any]) -> None:
    resp = client.get("/v1/audit/search", headers=auth(trail["key"]), params={"format": "xlsx"})
    assert resp.status_code == 400
