"""Hostile input at the HTTP border: oversized and deeply nested bodies, CSV and zip bombs,
path traversal in names and file names, SQL-, template- and script-ish strings.

The rule everywhere: a clear 4xx (or a literal, harmless result), never a 5xx, never
anything executed or written outside the service's folders.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from quanguard.container import Container, build_container
from tests.conftest import auth, make_settings

LIMIT = 1024 * 1024
NASTY = [
    "' OR 1=1 --",
    "x'); DROP TABLE audit_events; --",
    '" OR ""="',
    "{{7*7}}",
    "{% for x in range(3) %}boom{% endfor %}",
    "${jndi:ldap://127.0.0.1:1/a}",
    "${7*7}",
    "#{7*7}",
    "<script>alert(1)</script>",
    "%s%s%s%n",
    "../../../../etc/passwd",
    "\u202eevil\u0000nul",
    "a" * 300,
]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Container]]:
    from fastapi.testclient import TestClient

    from quanguard.api.app import create_app

    container = build_container(make_settings(tmp_path, max_body_bytes=LIMIT))
    from quanguard.auth import create_key

    keys = {}
    with container.session() as s, s.begin():
        for role, org in (("reporter", "政务服务网"), ("auditor", "市网信办"), ("manager", "市大数据局"),
                          ("provider", "市卫健委"), ("consumer", "某银行"), ("officer", "市网信办"),
                          ("admin", "市大数据局")):
            keys[role] = create_key(s, role=role, org=org, name=role).key
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client, keys, container
    container.close()


def _event(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "ts": datetime.now(UTC).isoformat(),
        "actor": {"id": "u-1", "role": "consumer", "org": "某银行"},
        "action": "query",
        "dataset": "社保缴费",
        "fields": ["姓名"],
        "grade": "L2",
        "rows": 3,
        "purpose": "统计",
        "decision": "allow",
        "source_ip": "10.0.0.1",
    }
    base.update(over)
    return base


def _strings(obj: object) -> set[str]:
    if isinstance(obj, str):
        return {obj}
    if isinstance(obj, dict):
        return set().union(*(_strings(v) for v in obj.values())) if obj else set()
    if isinstance(obj, list):
        return set().union(*(_strings(v) for v in obj)) if obj else set()
    return set()


# --- size --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/events/batch", "/v1/mask", "/v1/policy/decide", "/v1/scan"])
def test_oversized_bodies_get_413(world: tuple[TestClient, dict[str, str], Container], path: str) -> None:
    client, keys, _ = world
    big = b"x" * (LIMIT + 10)
    r = client.post(path, content=big, headers={**auth(keys["admin"]), "content-type": "application/json"})
    assert r.status_code == 413, r.text[:200]
    assert r.json()["error"]["kind"] == "too_large"


def test_oversized_chunked_body_without_length_gets_413(world: tuple[TestClient, dict[str, str], Container]) -> None:
    client, keys, _ = world

    def chunks() -> Iterator[bytes]:
        for _ in range(LIMIT // 8192 + 2):
            yield b"y" * 8192

    r = client.post("/v1/events/batch", content=chunks(), headers=auth(keys["reporter"]))
    assert r.status_code == 413


def test_batch_line_limit(tmp_path: Path) -> None:
    """More lines than a batch may hold, under the byte limit: refused whole, nothing stored."""
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from monitor.ingest import MAX_BATCH
    from quanguard.api.app import create_app
    from quanguard.auth import create_key

    container = build_container(make_settings(tmp_path, max_body_bytes=64 * LIMIT))
    try:
        with container.session() as s, s.begin():
            key = create_key(s, role="reporter", org="政务服务网", name="rep").key
        line = json.dumps(_event(dataset="too-many"), ensure_ascii=False)
        body = "\n".join([line] * (MAX_BATCH + 1))
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            r = client.post("/v1/events/batch", content=body, headers=auth(key))
        assert r.status_code in (400, 413), r.text[:300]
        with container.engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM audit_events WHERE dataset = 'too-many'")).scalar()
        assert stored == 0
    finally:
        container.close()


# --- nesting -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/v1/events", "reporter"),
        ("/v1/mask", "manager"),
        ("/v1/unmask", "manager"),
        ("/v1/policy/decide", "manager"),
        ("/v1/scan", "manager"),
        ("/v1/exchange/aggregate", "consumer"),
        ("/v1/exchange/datasets/x/consent", "provider"),
    ],
)
@pytest.mark.parametrize("depth", [1_000, 20_000])
def test_deeply_nested_json_is_a_clean_4xx(world: tuple[TestClient, dict[str, str], Container], path: str, role: str, depth: int) -> None:
    client, keys, _ = world
    for opener, closer in (("[", "]"), ('{"a":', "}")):
        body = opener * depth + "1" + closer * depth
        r = client.post(path, content=body, headers={**auth(keys[role]), "content-type": "application/json"})
        assert 400 <= r.status_code < 500, f"{path} depth {depth}: {r.status_code} {r.text[:200]}"


def test_deep_nesting_inside_a_valid_record(world: tuple[TestClient, dict[str, str], Container]) -> None:
    client, keys, _ = world
    value = "[" * 5000 + "]" * 5000
    body = '{"profile": "共享", "records": [{"备注": ' + value + "}]}"
    r = client.post("/v1/mask", content=body, headers={**auth(keys["manager"]), "content-type": "application/json"})
    assert r.status_code < 500, r.text[:200]


# CSV and xlsx bombs run against a served process: tests/security/test_hostile_served.py


# --- traversal -------------------------------------------------------------------------------
TRAVERSAL = ["../../etc/passwd", "..\\..\\windows\\win.ini", "/etc/passwd", "a/../../b", "..", "%2e%2e%2fetc"]


@pytest.mark.parametrize("name", TRAVERSAL)
def test_traversal_in_uploaded_file_names_stays_inside(world: tuple[TestClient, dict[str, str], Container], name: str) -> None:
    client, keys, _ = world
    r = client.post("/v1/scan", headers=auth(keys["manager"]),
                    files={"file": (name + ".csv", b"name,phone\n\xe5\xbc\xa0\xe4\xb8\x89,13812345678\n", "text/csv")},
                    data={"dataset": name})
    assert r.status_code < 500, r.text[:300]
    assert "root:x:0:0" not in r.text
    r = client.post("/v1/watermark/embed", headers=auth(keys["manager"]),
                    files={"file": (name + ".csv", b"id,amount\n" + b"".join(b"%d,%d.5\n" % (i, i) for i in range(50)), "text/csv")},
                    data={"recipient": name, "dataset": name})
    assert r.status_code < 500, r.text[:300]
    disp = r.headers.get("content-disposition", "")
    assert ".." not in disp and "/" not in disp.split("filename", 1)[-1], disp


@pytest.mark.parametrize("name", TRAVERSAL)
def test_traversal_in_exchange_dataset_names_and_paths(world: tuple[TestClient, dict[str, str], Container], name: str) -> None:
    client, keys, _ = world
    r = client.post("/v1/exchange/datasets", headers=auth(keys["provider"]),
                    data={"name": name}, files={"file": ("t.csv", b"k,v\n1,2\n2,3\n", "text/csv")})
    assert r.status_code < 500, r.text[:300]
    r = client.post("/v1/exchange/datasets", headers=auth(keys["provider"]),
                    data={"name": "p1", "path": name})
    assert 400 <= r.status_code < 500, r.text[:300]
    assert "root:x:0:0" not in r.text
    for url in (f"/v1/exchange/datasets/{name}", f"/v1/exchange/jobs/{name}"):
        r = client.get(url, headers=auth(keys["consumer"]))
        assert r.status_code < 500 and "root:x:0:0" not in r.text


def test_server_path_registration_cannot_read_outside_the_inbox(world: tuple[TestClient, dict[str, str], Container]) -> None:
    client, keys, _ = world
    for path in ("/etc/passwd", "/etc/hostname", "../../../../../../etc/passwd"):
        r = client.post("/v1/exchange/datasets", headers=auth(keys["provider"]), data={"name": "leak", "path": path})
        assert 400 <= r.status_code < 500, r.text[:300]
        assert "root" not in r.text.lower().replace("root_", "")


# --- injection-ish strings -------------------------------------------------------------------
@pytest.mark.parametrize("payload", NASTY, ids=range(len(NASTY)))
def test_nasty_strings_are_stored_and_found_literally(world: tuple[TestClient, dict[str, str], Container], payload: str) -> None:
    client, keys, _ = world
    ev = _event(dataset=payload[:200], purpose=payload, actor={"id": payload[:64], "role": "consumer", "org": payload[:100]})
    r = client.post("/v1/events", json=ev, headers=auth(keys["reporter"]))
    assert r.status_code in (201, 400, 422), r.text[:300]
    if r.status_code != 201:
        return  # rejected as invalid: acceptable
    # A control event that must NOT match the nasty filter.
    assert client.post("/v1/events", json=_event(dataset="control"), headers=auth(keys["reporter"])).status_code == 201
    r = client.get("/v1/audit/search", params={"dataset": payload[:200]}, headers=auth(keys["auditor"]))
    if "\x00" in payload:  # no URL may spell NUL (PostgreSQL cannot compare it): refused
        assert r.status_code == 400 and "NUL" in r.json()["error"]["message"], r.text[:300]
        return
    assert r.status_code == 200, r.text[:300]
    hits = r.json()["hits"]
    assert len(hits) == 1, f"filter {payload!r} matched {len(hits)} events"
    assert payload[:200] in _strings(hits[0]), "the value did not come back literally"
    r = client.get("/v1/audit/search", params={"q": payload}, headers=auth(keys["auditor"]))
    assert r.status_code in (200, 400), r.text[:300]
    assert "boomboomboom" not in r.text


@pytest.mark.parametrize("payload", NASTY, ids=range(len(NASTY)))
def test_nasty_strings_in_every_filter_and_body_field_never_5xx(world: tuple[TestClient, dict[str, str], Container], payload: str) -> None:
    client, keys, _ = world
    for field in ("actor", "role", "org", "action", "dataset", "grade", "effect", "since", "until", "q", "sort", "agg"):
        r = client.get("/v1/audit/search", params={field: payload}, headers=auth(keys["auditor"]))
        assert r.status_code < 500, f"{field}={payload!r}: {r.status_code} {r.text[:200]}"
    r = client.post("/v1/policy/decide", headers=auth(keys["manager"]), json={
        "principal": {"role": payload[:200], "org": payload[:200]}, "action": payload[:200],
        "resource": {"grade": payload, "dataset": payload, "owner_org": payload, "purpose": payload}})
    assert r.status_code in (200, 400, 422), r.text[:200]
    r = client.post("/v1/mask", headers=auth(keys["manager"]),
                    json={"profile": payload, "records": [{payload: payload}]})
    assert r.status_code < 500, r.text[:200]
    r = client.post("/v1/mask", headers=auth(keys["manager"]),
                    json={"records": [{"备注": payload, "电话": "13812345678"}]})
    assert r.status_code < 500, r.text[:200]
    if r.status_code == 200:
        assert r.json()["records"][0]["备注"] in (payload, "")  # text without PII passes unchanged
    r = client.post("/v1/exchange/aggregate", headers=auth(keys["consumer"]),
                    json={"dataset": payload, "agg": payload, "column": payload, "by": [payload],
                          "where": {payload: payload}})
    assert r.status_code < 500, r.text[:200]
    r = client.patch(f"/v1/alerts/{quote(payload[:50], safe='')}", headers=auth(keys["auditor"]),
                     json={"status": payload, "note": payload})
    assert r.status_code < 500, r.text[:200]


@pytest.mark.parametrize("payload", [
    "Mars/Olympus", "../../../etc/localtime", "\u0000", "UTC\n",
    "a" * 300,
])
def test_search_time_zone_parameter_is_validated(world: tuple[TestClient, dict[str, str], Container], payload: str) -> None:
    client, keys, _ = world
    r = client.get("/v1/audit/search", params={"tz": payload, "agg": "per_day"}, headers=auth(keys["auditor"]))
    assert 400 <= r.status_code < 500, f"tz={payload!r}: {r.status_code} {r.text[:200]}"


def test_console_escapes_what_it_echoes(world: tuple[TestClient, dict[str, str], Container]) -> None:
    client, keys, _ = world
    page = client.get("/console/login")
    import re

    found = re.search(r'name="csrf"\s+value="([^"]+)"', page.text)
    assert found is not None
    token = found.group(1)
    r = client.post("/console/login", data={"csrf": token, "key": keys["auditor"]}, follow_redirects=False)
    assert r.status_code == 303
    script = "<script>alert(1)</script>"
    client.post("/v1/events", json=_event(purpose=script, dataset=script), headers=auth(keys["reporter"]))
    r = client.get("/console/search", params={"dataset": script, "q": "{{7*7}}"})
    assert r.status_code < 500, r.text[:300]
    assert script not in r.text
    assert "&lt;script&gt;" in r.text
