"""A short, bounded run of bench/load_mixed.py: every endpoint of the mix is served under
concurrency without a server error, and the results file follows bench/README.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_mixed_load_smoke(tmp_path: Path, backend: str, pg_ok: bool) -> None:
    if backend == "postgresql" and not pg_ok:
        pytest.skip("PostgreSQL not reachable")
    out = tmp_path / "load.json"
    r = subprocess.run(
        [sys.executable, str(REPO / "bench" / "load_mixed.py"), "--backend", backend,
         "--step-seconds", "2", "--clients", "1,6", "--workers", "1,2", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["bench"] == "load_mixed"
    for row in data["rows"]:
        assert {"metric", "ours", "anchor", "ratio", "goal", "unit", "met"} <= set(row)
    # SQLite runs one worker; PostgreSQL each worker count, side by side
    assert len(data["steps"]) == (1 if backend == "sqlite" else 2)
    for result in data["steps"]:
        assert [s["clients"] for s in result["steps"]] == [1, 6]
        for step in result["steps"]:
            assert step["all"]["server_errors"] == 0, step
            assert step["all"]["rps"] > 0
        top = result["steps"][-1]
        for kind in ("batch", "event", "search", "mask"):
            assert top[kind]["requests"] > 0, f"no {kind} request was made at 6 clients"
            assert top[kind]["errors"] == 0, (kind, top[kind])
