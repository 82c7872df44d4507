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


def test_a_chunk_of_events_triggers_no_collection(run: Callable[..., Any],
                                                  tmp_path: Path) -> None:
    # The events of a chunk (and their rows) hold no cycles and are freed by reference
    # counting once stored; a collection in the middle of a chunk would only walk them
    # and promote them, so the threshold sits above what a full chunk keeps alive.
    lines = [json.dumps({"ts": f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
                         "actor": {"id": f"u-{i % 50}", "role": "consumer", "org": "o"},
                         "action": "query", "dataset": "d", "grade": "L1", "rows": i,
                         "fields": ["name", "phone"], "purpose": "monthly report",
                         "decision": "allow", "source_ip": f"10.0.{i % 256}.1",
                         "labels": {"k": str(i)}})
             for i in range(25_000)]
    (tmp_path / "e.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run("audit", "status")  # the store exists: the ingest alone is watched
    young: list[int] = []
    start_up = gc.get_threshold()

    def watch(phase: str, info: dict[str, int]) -> None:
        # (the command's start-up, before the bulk settings, collects as usual)
        if phase == "start" and info["generation"] == 0 and gc.get_threshold() != start_up:
            young.append(1)

    gc.callbacks.append(watch)
    try:
        r = run("audit", "ingest", "e.ndjson", "--format", "json")
    finally:
        gc.callbacks.remove(watch)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["accepted"] == 25_000
    assert len(young) == 0


def test_a_finished_command_leaves_its_objects_to_the_end_of_the_process(tmp_path: Path) -> None:
    # the interpreter's last collections would walk everything the command made; the
    # command freezes them on its way out (files and connections are closed by then), and
    # its output and exit status are as ever
    import os
    import subprocess
    import sys

    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count(),"
            " file=sys.stderr))\n"  # registered first: runs last
            "from quanguard.cli.main import main\n"
            "main(['audit', 'ingest', sys.argv[1], '--format', 'json'])\n")
    line = json.dumps({"ts": "2026-01-01T00:00:00Z",
                       "actor": {"id": "u-1", "role": "consumer", "org": "o"},
                       "action": "query", "decision": "allow"})
    (tmp_path / "e.ndjson").write_text(line + "\n", encoding="utf-8")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "QUANGUARD_DB_URL": f"sqlite:///{tmp_path / 'q.db'}",
           "QUANGUARD_KEY_DIR": str(tmp_path / "keys"), "QUANGUARD_DATA_DIR": str(tmp_path / "var"),
           "QUANGUARD_POLICY_DIR": str(repo / "policies"), "QUANGUARD_ES_URL": ""}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "e.ndjson")], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["accepted"] == 1
    frozen = int(proc.stderr.rsplit("frozen at exit:", 1)[1].split()[0])
    assert frozen > 10_000  # what the command loaded and made, no longer walked at exit
