"""The published JSON Schema of the reporter NDJSON line says what the parser does."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from monitor import ingest
from monitor.actions import KNOWN_ACTIONS
from monitor.errors import InvalidEvent
from monitor.event_schema import build_schema
from monitor.events import EFFECTS, OUTCOMES
from quanguard.auth import Principal

SCHEMA = json.loads((Path(ingest.__file__).parent / "event.schema.json").read_text(encoding="utf-8"))
NOW = datetime(2026, 11, 26, 1, tzinfo=UTC)
BASE: dict[str, Any] = {"ts": "2026-11-26T08:00:00+08:00",
                        "actor": {"id": "u1", "role": "analyst", "org": "市人社局"}, "action": "query"}


def _parser_accepts(obj: Any) -> bool:
    try:
        ingest.parse_record(obj, reporter="svc", now=NOW)
    except InvalidEvent:
        return False
    return True


def _schema_accepts(obj: Any) -> bool:
    return bool(jsonschema.Draft202012Validator(SCHEMA).is_valid(obj))


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_written_schema_is_the_generated_one() -> None:
    assert SCHEMA == build_schema(), "regenerate: python -m monitor.event_schema > monitor/event.schema.json"


def test_fields_required_and_enums_match_the_parser() -> None:
    assert set(SCHEMA["properties"]) == set(ingest._KEYS)
    assert SCHEMA["required"] == list(ingest._REQUIRED)
    assert SCHEMA["additionalProperties"] is False
    assert set(SCHEMA["properties"]["action"]["enum"]) == set(KNOWN_ACTIONS)
    assert [e for e in SCHEMA["properties"]["decision"]["enum"] if e] == list(EFFECTS)
    assert SCHEMA["properties"]["outcome"]["enum"] == list(OUTCOMES)
    assert SCHEMA["properties"]["actor"]["required"] == ["id", "role", "org"]
    assert set(SCHEMA["properties"]["actor"]["properties"]) == {"id", "role", "org", "name"}
    assert SCHEMA["properties"]["fields"]["maxItems"] == ingest.MAX_FIELDS
    assert SCHEMA["properties"]["dataset"]["maxLength"] == ingest.MAX_TEXT


def _readme_example() -> dict[str, Any]:
    readme = (Path(ingest.__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- event-example -->")
    block = readme[start:].split("```json", 1)[1].split("```", 1)[0]
    doc: dict[str, Any] = json.loads(block)
    return doc


VALID = [
    BASE,
    {**BASE, "dataset": "户籍人口", "fields": ["name", "phone"], "grade": "L3", "rows": 120,
     "purpose": "社保核验", "decision": "allow", "source_ip": "10.0.0.8", "reason": None,
     "outcome": "failure", "request_id": "r-1", "result_digest": "ab" * 32,
     "labels": {"system": "hr"}, "rule_id": "r", "policy_version": "v1", "reporter": "svc"},
    {**BASE, "actor": {"id": "u1", "role": "analyst", "org": "o", "name": "张伟"}},
    {**BASE, "ts": "2026-11-26T00:00:00Z", "rows": 0, "decision": "approval_required", "labels": None},
]
INVALID = [
    {k: v for k, v in BASE.items() if k != "ts"},
    {k: v for k, v in BASE.items() if k != "actor"},
    {k: v for k, v in BASE.items() if k != "action"},
    {**BASE, "extra": 1},
    {**BASE, "action": "steal"},
    {**BASE, "ts": "2026-11-26T08:00:00"},
    {**BASE, "ts": "yesterday"},
    {**BASE, "actor": {"id": "u1", "role": "analyst"}},
    {**BASE, "actor": {"id": " ", "role": "analyst", "org": "o"}},
    {**BASE, "actor": "u1"},
    {**BASE, "rows": -1},
    {**BASE, "rows": "12"},
    {**BASE, "rows": True},
    {**BASE, "decision": "maybe"},
    {**BASE, "outcome": "ok"},
    {**BASE, "outcome": None},
    {**BASE, "fields": "name"},
    {**BASE, "fields": [1]},
    {**BASE, "labels": {"k": 1}},
    {**BASE, "dataset": 5},
    {**BASE, "purpose": "x" * (ingest.MAX_TEXT + 1)},
    {**BASE, "actor": {"id": "u1", "role": "analyst", "org": "o", "name": 7}},
    ["not", "an", "object"],
]


@pytest.mark.parametrize("obj", VALID, ids=range(len(VALID)))
def test_valid_examples_pass_schema_and_parser(obj: Any) -> None:
    assert _schema_accepts(obj) and _parser_accepts(obj)


@pytest.mark.parametrize("obj", INVALID, ids=range(len(INVALID)))
def test_invalid_examples_fail_schema_and_parser(obj: Any) -> None:
    assert not _schema_accepts(obj)
    assert not _parser_accepts(obj)


def test_readme_example_is_valid() -> None:
    example = _readme_example()
    assert _schema_accepts(example) and _parser_accepts(example)


def test_schema_served_to_authenticated_callers_only(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> None:
    key = make_key("consumer")[0]
    assert client.get("/v1/schemas/event").status_code == 401
    r = client.get("/v1/schemas/event", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200 and r.json() == SCHEMA
