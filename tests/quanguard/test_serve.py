"""`quanguard serve` on a fresh folder: what `make run` does, end to end over a real socket."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.serving import free_port, stop, wait_ready

REPO = Path(__file__).resolve().parents[2]


def _start(cwd: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANGUARD_")}
    env["QUANGUARD_POLICY_DIR"] = str(REPO / "policies")
    env["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""
    return subprocess.Popen(
        [sys.executable, "-m", "quanguard.cli.main", "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_ready(port: int, proc: subprocess.Popen[str]) -> None:
    assert wait_ready(proc, f"http://127.0.0.1:{port}", timeout=60,
                      logs=lambda: proc.stderr.read() if proc.stderr else ""), "server did not become ready"


@pytest.mark.slow
def test_first_start_prints_a_bootstrap_key_that_works_and_second_start_does_not(tmp_path: Path) -> None:
    port = free_port()
    proc = _start(tmp_path, port)
    try:
        _wait_ready(port, proc)
        # The key line is printed before the server starts listening.
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.search(r"(qg_[0-9a-f]{8}_[A-Za-z0-9_\-]{43})", line)
        assert match, line
        key = match.group(1)
        r = httpx.get(f"http://127.0.0.1:{port}/v1/whoami", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200
        assert r.json()["role"] == "admin"
    finally:
        out, err = stop(proc, timeout=20)
    assert (tmp_path / "var" / "quanguard.db").exists()
    # Logs are JSON lines and never carry the key.
    assert key not in err
    assert f"http://127.0.0.1:{port}" in err

    proc = _start(tmp_path, port)
    try:
        _wait_ready(port, proc)
    finally:
        out, err = stop(proc, timeout=20)
    assert "bootstrap admin key" not in out
