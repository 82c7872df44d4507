"""Text that is not text: a lone UTF-16 surrogate sent to the masking API.

JSON may write ``"\\ud800"`` (an escape of half a UTF-16 pair); decoded, it is a Python
string no UTF-8 encoder takes. An outside tester sent it:

* in a column name to ``POST /v1/unmask``: the error message quoted it, the error answer
  could not be encoded, and the client got a plain-text ``Internal Server Error`` and the
  trail no event for the request;
* in a record's value, key or nested value to ``POST /v1/mask`` (JSON and NDJSON): 500.

Now such a record is refused (400, naming the record), and no error answer fails to
encode, so every one of these requests gets the JSON error shape and one event.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quanguard.container import Container
from tests.conftest import auth


@pytest.fixture
def loose(container: Container) -> Iterator[TestClient]:
    """A client that answers what the server answers (no exception re-raised)."""
    from quanguard.api.app import create_app

    with TestClient(create_app(container), raise_server_exceptions=False) as c:
        yield c


def _events_for(container: Container, rid: str) -> list[dict[str, Any]]:
    with container.session() as session:
        docs = [json.loads(e.body) for e in container.audit.store.iter_range(session)]
    return [d for d in docs if d.get("trace", {}).get("id") == rid]


def _refused(container: Container, resp: Any, *, status: int = 400) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    error: dict[str, Any] = resp.json()["error"]
    assert error["request_id"] == resp.headers["x-request-id"]
    events = _events_for(container, error["request_id"])
    assert len(events) == 1, events
    assert events[0]["event"]["outcome"] != "success"
    return error


def _json(body: object) -> dict[str, Any]:
    # json.dumps escapes the lone surrogate as \ud800: the bytes on the wire are ASCII
    return {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}


@pytest.mark.parametrize("columns", [["\ud800"], ["身份证号\udfff"], ["a", "\udbff\ud800x"]])
def test_unmask_naming_a_column_that_is_not_text(loose: TestClient, container: Container,
                                                 make_key: Any, columns: list[str]) -> None:
    key = make_key("provider")[0]
    kw = _json({"records": [{"a": "x"}], "columns": columns})
    resp = loose.post("/v1/unmask", content=kw["content"], headers={**kw["headers"], **auth(key)})
    error = _refused(container, resp, status=resp.status_code if resp.status_code < 500 else 400)
    assert resp.status_code in (400, 403, 422), resp.text
    assert "surrogate" in error["message"] or resp.status_code == 403, error


@pytest.mark.parametrize(("records", "index"), [
    ([{"a": "\ud800 13800138000"}], 0),
    ([{"a": "ok"}, {"\udc00": "13800138000"}], 1),
    ([{"a": "ok"}, {"b": "ok"}, {"a": {"b": ["x", "\ud800"]}}], 2),
])
def test_mask_records_holding_a_lone_surrogate(loose: TestClient, container: Container,
                                               make_key: Any, records: list[object], index: int) -> None:
    key = make_key("provider")[0]
    kw = _json({"records": records})
    resp = loose.post("/v1/mask", content=kw["content"], headers={**kw["headers"], **auth(key)})
    error = _refused(container, resp)
    assert f"record {index}" in error["message"] and "surrogate" in error["message"], error


def test_mask_ndjson_holding_a_lone_surrogate(loose: TestClient, container: Container,
                                              make_key: Any) -> None:
    key = make_key("provider")[0]
    body = b'{"a": "ok"}\n{"a": "\\ud800"}\n'
    resp = loose.post("/v1/mask", content=body,
                      headers={"content-type": "application/x-ndjson", **auth(key)})
    error = _refused(container, resp)
    assert "record 1" in error["message"] and "surrogate" in error["message"], error


def test_a_pair_written_as_escapes_is_text_and_is_masked(loose: TestClient, make_key: Any) -> None:
    """``\\ud83d\\ude00`` is one character (😀), written as its two halves: it is text."""
    key = make_key("provider")[0]
    kw = _json({"records": [{"备注": "\U0001F600 联系电话 13812345678", "emoji": "\U0001F600"}]})
    assert b"\\ud83d\\ude00" in kw["content"]
    resp = loose.post("/v1/mask", content=kw["content"], headers={**kw["headers"], **auth(key)})
    assert resp.status_code == 200, resp.text
    (record,) = resp.json()["records"]
    assert record["emoji"] == "\U0001F600" and "13812345678" not in record["备注"]


def test_no_error_answer_fails_to_encode(loose: TestClient, container: Container,
                                         make_key: Any) -> None:
    """Whatever an error quotes from the request, the answer is JSON and the request has
    its event: here a profile name that is half a surrogate pair."""
    key = make_key("provider")[0]
    kw = _json({"records": [{"a": "x"}], "profile": "共享\ud800"})
    resp = loose.post("/v1/mask", content=kw["content"], headers={**kw["headers"], **auth(key)})
    assert resp.status_code < 500, resp.text
    _refused(container, resp, status=resp.status_code)


def test_an_error_quoting_half_a_pair_is_still_a_json_answer_with_its_event(
        loose: TestClient, container: Container, make_key: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The root of the unmask 500: a use case's error quoting the caller's text could not be
    encoded, so the answer fell back to plain text and the request lost its event. Any
    error message is now written (the half pair as its escape)."""
    from quanguard.errors import InvalidInput
    from quanguard.usecases import mask as uc

    def quoting(*_a: object, **_k: object) -> object:
        raise InvalidInput("no column(s) \ud800 in the records")

    monkeypatch.setattr(uc, "mask_records", quoting)
    key = make_key("provider")[0]
    resp = loose.post("/v1/mask", json={"records": [{"a": "x"}]}, headers=auth(key))
    error = _refused(container, resp)
    assert error["message"].startswith("no column(s) ") and error["message"].endswith(" in the records")
