"""The JSON Schema of one reporter event (one NDJSON line), built from the parser's own
constants so the two cannot drift; ``monitor/event.schema.json`` is its written copy.

Regenerate after changing ``monitor/ingest.py`` or ``monitor/actions.py``::

    python -m monitor.event_schema > monitor/event.schema.json
"""

from __future__ import annotations

import json
from typing import Any

from monitor.actions import KNOWN_ACTIONS
from monitor.events import EFFECTS, OUTCOMES
from monitor.ingest import _KEYS, _REQUIRED, MAX_FIELDS, MAX_FUTURE, MAX_TEXT

__all__ = ["build_schema"]

_TS_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$"

_TEXT = {
    "dataset": "The dataset accessed.",
    "grade": "Grade of the data (L1..L5).",
    "purpose": "Declared purpose (redacted before storage).",
    "source_ip": "Client address.",
    "reason": "Decision reason or note (redacted before storage).",
    "request_id": "The reporter's request or trace id.",
    "result_digest": "sha256 hex of what was delivered.",
    "rule_id": "The policy rule of the decision (kept only with decision).",
    "policy_version": "The policy version of the decision (kept only with decision).",
    "reporter": "Optional; if present it must equal the authenticated caller's id.",
}


def _text(description: str, *, nullable: bool = True, required: bool = False) -> dict[str, Any]:
    prop: dict[str, Any] = {"type": ["string", "null"] if nullable else "string",
                            "maxLength": MAX_TEXT, "description": description}
    if required:
        prop.update(minLength=1, pattern=r"\S")
    return prop


def build_schema() -> dict[str, Any]:
    minutes = int(MAX_FUTURE.total_seconds() // 60)
    props: dict[str, Any] = {
        "ts": {"type": "string", "format": "date-time", "pattern": _TS_PATTERN,
               "description": "When the access happened: RFC 3339 with Z or an offset; at most "
                              f"{minutes} minutes in the future."},
        "actor": {
            "type": "object", "required": ["id", "role", "org"], "additionalProperties": True,
            "description": "Who accessed the data.",
            "properties": {
                "id": _text("The user's id in the reporter system.", nullable=False, required=True),
                "role": _text("The user's role.", nullable=False, required=True),
                "org": _text("The user's organisation.", nullable=False, required=True),
                "name": _text("The account's display name."),
            },
        },
        "action": {"type": "string", "enum": sorted(KNOWN_ACTIONS),
                   "description": "What was done (monitor/actions.py KNOWN_ACTIONS)."},
        "fields": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_FIELDS,
                   "description": "Names of the fields accessed (names, never values)."},
        "rows": {"type": ["integer", "null"], "minimum": 0,
                 "description": "Rows delivered or read: a JSON integer literal (3, not 3.0)."},
        "decision": {"type": ["string", "null"], "enum": [*EFFECTS, None],
                     "description": "The access decision taken by the reporter."},
        "outcome": {"type": "string", "enum": list(OUTCOMES), "default": "success",
                    "description": "Whether the access succeeded."},
        "labels": {"type": ["object", "null"], "additionalProperties": {"type": "string"},
                   "description": "Extra string labels."},
        **{key: _text(desc) for key, desc in _TEXT.items()},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://quanguard.example/schemas/event.schema.json",
        "title": "quanguard reporter event (one NDJSON line of POST /v1/events/batch)",
        "description": "One access event a reporter system posts. One JSON object per line; "
                       "unknown keys are refused. The authenticated caller is the reporter. "
                       "Free text (purpose, reason) is redacted before it is stored. Optional "
                       "keys may be null (same as absent), except fields and outcome.",
        "type": "object",
        "additionalProperties": False,
        "required": list(_REQUIRED),
        "properties": {key: props[key] for key in sorted(_KEYS)},
    }


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(build_schema(), ensure_ascii=False, indent=2))
