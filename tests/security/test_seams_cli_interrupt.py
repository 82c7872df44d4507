"""A command stopped half-way, or mistyped, still leaves its attempt on the trail.

What an operator did:

* pressed Ctrl-C during ``quanguard mask`` of a large file: the command said
  "interrupted" and exited 130, but the trail had no event of the attempt;
* stopped it with SIGTERM (what ``timeout``, systemd and docker send): the process died at
  once — no event, and a ``.OUT.….part`` file of half-masked rows was left beside the output;
* mistyped an option (``keys list --format xml``, ``scan --encoding base64``): exit 2 and
  no event, though every other failed command leaves one.

Now an interrupted command removes what it had begun to write, records the attempt (exit
130 for SIGINT, 143 for SIGTERM) and a usage error of a command is recorded like any other
failure. Asking for help is not an attempt and records nothing.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POLICY_DIR

REPO = Path(__file__).resolve().parents[2]


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANGUARD_")}
    env.update({"QUANGUARD_DB_URL": f"sqlite:///{tmp / 'svc.db'}", "QUANGUARD_KEY_DIR": str(tmp / "keys"),
                "QUANGUARD_DATA_DIR": str(tmp / "data"), "QUANGUARD_POLICY_DIR": str(POLICY_DIR),
                "QUANGUARD_ES_URL": "", "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
                "PYTHONPATH": str(REPO)})
    return env


def _cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "quanguard.cli.main", *args], env=_env(tmp), cwd=tmp,
                          capture_output=True, text=True, timeout=300, check=False)


def _events(tmp: Path) -> list[dict[str, Any]]:
    db = tmp / "svc.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return [json.loads(b) for (b,) in conn.execute("SELECT body FROM audit_events ORDER BY seq")]


def _big_csv(path: Path, rows: int = 150_000) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("姓名,联系电话,身份证号,住址\n")
        for i in range(rows):
            fh.write(f"张{'三四五六七'[i % 5]}{i % 97},138{i % 100_000_000:08d},"
                     f"37010219{(i % 50) + 50:02d}0101{i % 1000:03d}X,山东省济南市历下区经十路{i % 500}号\n")


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_mask_leaves_no_part_file_and_one_event(tmp_path: Path, sig: int, code: int) -> None:
    src, out = tmp_path / "big.csv", tmp_path / "out.csv"
    _big_csv(src)
    assert _cli(tmp_path, "audit", "status", "--format", "json").returncode == 0  # store made
    before = len(_events(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "quanguard.cli.main", "mask", str(src), "-o", str(out)],
                            env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            # a child of a test run may inherit SIGINT ignored: restore it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.csv.*.part")) and proc.poll() is None:
        assert time.monotonic() < deadline, "the mask never started writing"
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert not out.exists() and not list(tmp_path.glob(".out.csv*")), list(tmp_path.iterdir())
    new = _events(tmp_path)[before:]
    assert len(new) == 1, new
    assert new[0]["event"]["action"] == "cli.mask" and new[0]["event"]["outcome"] == "failure"
    assert new[0]["labels"]["exit_code"] == str(code)
    assert "interrupted" in json.dumps(new[0], ensure_ascii=False)


@pytest.mark.parametrize(("args", "action", "fragment"), [
    (("keys", "list", "--format", "xml"), "cli.keys.list", "--format"),
    (("audit", "search", "--size", "many"), "cli.audit.search", "--size"),
    (("mask", "nothere.csv"), "cli.mask", "--output"),
])
def test_a_usage_error_of_a_command_is_recorded(tmp_path: Path, args: tuple[str, ...], action: str,
                                                fragment: str) -> None:
    assert _cli(tmp_path, "audit", "status", "--format", "json").returncode == 0
    before = len(_events(tmp_path))
    r = _cli(tmp_path, *args)
    assert r.returncode == 2 and fragment in r.stderr and "Traceback" not in r.stderr, r.stderr
    new = _events(tmp_path)[before:]
    assert len(new) == 1, new
    assert new[0]["event"]["action"] == action and new[0]["event"]["outcome"] == "failure"
    assert new[0]["labels"]["exit_code"] == "2" and fragment in json.dumps(new[0], ensure_ascii=False)


@pytest.mark.parametrize("args", [("keys", "--help"), ("keys",), ("mask", "--help"), ("--help",), ()])
def test_asking_for_help_records_nothing(tmp_path: Path, args: tuple[str, ...]) -> None:
    assert _cli(tmp_path, "audit", "status", "--format", "json").returncode == 0
    before = len(_events(tmp_path))
    r = _cli(tmp_path, *args)
    assert r.returncode in (0, 2) and "Usage" in r.stdout + r.stderr, r.stderr
    assert len(_events(tmp_path)) == before
