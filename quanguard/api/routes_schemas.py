"""Published schemas: ``GET /v1/schemas/event``, the reporter event (one NDJSON line)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from fastapi import APIRouter, Depends

from quanguard.api.deps import get_principal

router = APIRouter(tags=["schemas"])


@cache
def _event_schema() -> dict[str, object]:
    text = resources.files("monitor").joinpath("event.schema.json").read_text(encoding="utf-8")
    schema: dict[str, object] = json.loads(text)
    return schema


@router.get("/v1/schemas/event", dependencies=[Depends(get_principal)])
def get_event_schema() -> dict[str, object]:
    """The JSON Schema (draft 2020-12) of one reporter event, as posted to
    ``POST /v1/events`` and, one per line, to ``POST /v1/events/batch``."""
    return _event_schema()
