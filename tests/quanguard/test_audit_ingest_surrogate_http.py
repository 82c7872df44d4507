"""POST /v1/events/batch with one line whose JSON escapes spell a lone UTF-16 surrogate:
that line is an invalid line (207), the others are stored; never a 500 for the batch."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import auth


def _line(purpose: str) -> str:
    return json.dumps({
        "ts": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "actor": {"id": "user-1", "role": "consumer", "org": "市卫健委"}, "action": "query",
        "dataset": "户籍人口", "grade": "L2", "rows": 1, "purpose": purpose,
        "decision": "allow"}, ensure_ascii=True)


def test_batch_refuses_only_the_surrogate_line(
        client: Any, make_key: Callable[..., tuple[str, Any]]) -> None:
    key = make_key("reporter")[0]
    body = "\n".join([_line("核验 1"), _line("核验 \ud800"), _line("核验 \U0001F600")])
    r = client.post("/v1/events/batch", content=body, headers=auth(key))
    assert r.status_code == 207, r.text
    doc = r.json()
    assert doc["accepted"] == 2 and doc["rejected"] == 1
    assert doc["errors"][0]["line"] == 2 and "surrogate" in doc["errors"][0]["error"]


# Characters Python's str.splitlines() also breaks at that JSON text may hold raw inside a
# string (json.dumps(..., ensure_ascii=False) writes them so); NDJSON lines end at "\n" only
LINE_LIKE = "\u2028\u2029\x85"


def test_batch_lines_end_at_newline_only(
        client: Any, make_key: Callable[..., tuple[str, Any]], container: Any) -> None:
    key = make_key("reporter")[0]
    purposes = [f"核验{c}第{i}行" for i, c in enumerate(LINE_LIKE)]
    lines = [json.loads(_line(p)) for p in purposes]
    body = "\r\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n"
    assert all(c in body for c in LINE_LIKE)
    r = client.post("/v1/events/batch", content=body.encode(), headers=auth(key))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["accepted"] == len(LINE_LIKE) and doc["rejected"] == 0
    with container.session() as s:
        stored = [e.columns["purpose"] for e in container.audit.store.iter_range(s, doc["first_seq"])
                  if e.columns["action"] == "query"]
    assert stored == purposes
