"""A reporter's POST of events leaves its own event in the transaction of the events it
reported (issue 15): one commit per request, and never events without the record of the
request that brought them, nor the record of a request whose events were not kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quanguard.auth import Principal
from quanguard.container import Container
from tests.conftest import auth


def _line(i: int) -> str:
    ts = datetime.now(UTC) - timedelta(minutes=30) + timedelta(seconds=i)
    return json.dumps({"ts": ts.isoformat(), "actor": {"id": f"u{i % 3}", "role": "consumer",
                                                       "org": "市卫健委"},
                       "action": "query", "dataset": "户籍人口", "rows": i + 1}, ensure_ascii=False)


def _events(container: Container) -> list[dict[str, Any]]:
    with container.read_session() as session:
        return [{**json.loads(e.body), "seq": e.seq}
                for e in container.audit.store.iter_range(session)]


def _commits(container: Container) -> list[int]:
    """Count the commits of units of work from now on (the list grows by one each)."""
    seen: list[int] = []
    real = container.unit_of_work

    def counted() -> Any:
        seen.append(1)
        return real()

    container.unit_of_work = counted  # type: ignore[method-assign]
    return seen


def test_a_batch_and_its_request_event_commit_together(
        client: TestClient, container: Container,
        make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, holder = make_key("reporter", org="市卫健委")
    commits = _commits(container)
    body = "\n".join([_line(0), _line(1), "{not json", _line(3)])
    r = client.post("/v1/events/batch", content=body,
                    headers={**auth(key), "X-Request-ID": "req-batch-1"})
    assert r.status_code == 207, r.text
    doc = r.json()
    assert doc["accepted"] == 3 and [e["line"] for e in doc["errors"]] == [3]
    assert len(commits) == 1  # the events and the request's event: one transaction
    events = _events(container)
    reported = [e for e in events if e["event"]["action"] == "query"]
    (own,) = [e for e in events if e.get("trace", {}).get("id") == "req-batch-1"]
    assert [e["seq"] for e in reported] == [doc["first_seq"], doc["first_seq"] + 1, doc["last_seq"]]
    assert own["seq"] == doc["last_seq"] + 1
    assert own["event"]["action"] == "report_events" and own["user"]["id"] == holder.id
    assert own["audit"]["rows"] == 3 and own["audit"]["effect"] == "allow"
    assert own["labels"]["http_status"] == "207"
    assert own["labels"]["rejected"] == "1" and own["labels"]["lines"] == "4"
    assert own["labels"]["first_seq"] == str(doc["first_seq"])
    assert own["labels"]["last_seq"] == str(doc["last_seq"])
    assert len(events) == 4  # nothing else: no second event for the request


def test_one_event_post_names_its_status(
        client: TestClient, container: Container,
        make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, _ = make_key("reporter", org="市卫健委")
    r = client.post("/v1/events", content=_line(5), headers={**auth(key), "X-Request-ID": "req-single-1"})
    assert r.status_code == 201, r.text
    (own,) = [e for e in _events(container) if e.get("trace", {}).get("id") == "req-single-1"]
    assert own["event"]["action"] == "report_events" and own["labels"]["http_status"] == "201"
    assert own["seq"] == r.json()["seq"] + 1


def test_a_batch_without_a_valid_line_is_still_recorded(
        client: TestClient, container: Container,
        make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, holder = make_key("reporter", org="市卫健委")
    r = client.post("/v1/events/batch", content="{bad\n[1]",
                    headers={**auth(key), "X-Request-ID": "req-bad-batch-1"})
    assert r.status_code == 400
    (own,) = _events(container)
    assert own["trace"]["id"] == "req-bad-batch-1" and own["user"]["id"] == holder.id
    assert own["event"]["action"] == "http.post./v1/events/batch"
    assert own["labels"]["http_status"] == "400" and own["audit"]["effect"] == "error"


def test_when_the_request_event_cannot_be_written_no_reported_event_is_kept(
        container: Container, monkeypatch: pytest.MonkeyPatch,
        make_key: Callable[..., tuple[str, Principal]]) -> None:
    # the attack on "one transaction": the request's own event fails after the reported
    # events were appended; they must go with it, and the failure is still recorded
    key, _ = make_key("reporter", org="市卫健委")
    real = container.audit.record

    def failing(session: Any, **kw: Any) -> int:
        if kw.get("action") == "report_events":
            raise RuntimeError("disk full")
        return real(session, **kw)

    monkeypatch.setattr(container.audit, "record", failing)
    from quanguard.api.app import create_app

    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        r = client.post("/v1/events/batch", content="\n".join([_line(0), _line(1)]),
                        headers={**auth(key), "X-Request-ID": "req-fail-batch-1"})
    assert r.status_code == 500
    assert r.json()["error"]["request_id"] == "req-fail-batch-1"
    events = _events(container)
    assert [e["event"]["action"] for e in events] == ["http.post./v1/events/batch"]
    assert events[0]["labels"]["http_status"] == "500"


def test_the_command_line_ingest_adds_no_request_event(container: Container) -> None:
    from quanguard.auth import LOCAL_OPERATOR
    from quanguard.usecases import audit as uc

    result = uc.ingest(container, LOCAL_OPERATOR, [_line(0), _line(1)], max_lines=None)
    assert result.accepted == 2
    assert [e["event"]["action"] for e in _events(container)] == ["query", "query"]
