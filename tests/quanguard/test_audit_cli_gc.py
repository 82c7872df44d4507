"""``quanguard audit ingest`` tunes the cyclic collector for the bulk load (frozen start-up
objects, a higher threshold) and puts it back as it was when the command ends: a process
that runs the command in-process (a test runner, an embedding tool) keeps its own settings
and can still collect what it allocated before."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def test_ingest_leaves_the_collector_as_it_found_it(run: Callable[..., Any],
                                                    tmp_path: Path) -> None:
    line = json.dumps({"ts": "2026-01-01T00:00:00Z",
                       "actor": {"id": "u-1", "role": "consumer", "org": "o"},
                       "action": "query", "decision": "allow"})
    (tmp_path / "e.ndjson").write_text(line + "\n{bad\n", encoding="utf-8")
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    r = run("audit", "ingest", "e.ndjson", "--format", "json")
    assert r.exit_code == 0, r.output
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == frozen
