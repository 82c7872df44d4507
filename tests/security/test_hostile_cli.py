"""Hostile text at the CLI's commands that take files and text: lone surrogates (a JSON
escape ``\\ud800`` in a file, or a name that is not UTF-8: Python hands such argv and file
names over as lone surrogates ``\\udcff``), NUL, an overlong cell, bytes that are not
UTF-8, invalid JSON, an empty file.

For every run: a clear error or a result, never an internal error (exit 70) or a
traceback, and the attempt is in the audit trail (at least one new event).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from quanguard.container import build_container
from tests.conftest import make_settings

GOOD_CSV = "姓名,手机号,金额\n" + "".join(f"张{i},1380013{i:04d},{i}\n" for i in range(40))

# name -> the bytes of the hostile file (a .csv unless the name says .jsonl)
FILES: dict[str, bytes] = {
    "surrogate.jsonl": b'{"name": "x\\ud800y", "phone": "13800138000"}\n',
    "surrogate.csv": b"name,phone\nx\\ud800y,13800138000\n",
    "nul.csv": b"name,phone\na\x00b,13800138000\n",
    "long.csv": b"name,phone\n" + "长".encode() * 400_000 + b",13800138000\n",
    "non_utf8.csv": b"name,phone\n\xff\xfe\xed\xa0\x80,13800138000\n",
    "invalid.jsonl": b'{"name": "x", \n',
    "empty.csv": b"",
}
# argv that is not UTF-8 reaches Python as lone surrogates (PEP 383)
BAD_NAME = os.fsdecode(b"\xff\xfe\xed\xa0\x80")
NAMES = {"surrogate": BAD_NAME, "long": "名" * 5000, "nul_free_control": "a\u202eb\u0007c"}


def _commands(src: str, out: str) -> dict[str, list[str]]:
    return {
        "scan": ["scan", src, "--format", "json"],
        "mask": ["mask", src, "-o", out, "--format", "json"],
        "watermark-embed": ["watermark", "embed", src, "-o", out, "--recipient", "r1",
                            "--format", "json"],
        "watermark-detect": ["watermark", "detect", src, "--format", "json"],
        "audit-ingest": ["audit", "ingest", src, "--format", "json"],
    }


def _events(tmp: Path) -> int:
    container = build_container(make_settings(tmp))
    try:
        with container.session() as session:
            return int(container.audit.store.head(session).seq)
    finally:
        container.close()


def _clean(result: Any) -> None:
    output = (result.stdout or "") + (getattr(result, "stderr", "") or "")
    assert result.exit_code != 70, output
    assert "internal error" not in output and "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


@pytest.mark.parametrize("command", sorted(_commands("", "")))
@pytest.mark.parametrize("name", sorted(FILES))
def test_hostile_files(cli_run: Callable[..., Any], tmp_path: Path, command: str, name: str) -> None:
    src = tmp_path / name
    src.write_bytes(FILES[name])
    out = tmp_path / ("out" + src.suffix)
    before = _events(tmp_path)
    result = cli_run(*_commands(str(src), str(out))[command])
    _clean(result)
    if command == "audit-ingest" and name == "empty.csv":
        # an empty file is an ingest of nothing (as an empty POST /v1/events/batch): exit 0
        assert result.exit_code == 0 and '"accepted": 0' in result.stdout
        return
    assert result.exit_code != 0 or command != "audit-ingest"
    assert _events(tmp_path) > before


@pytest.mark.parametrize("command", sorted(_commands("", "")))
@pytest.mark.parametrize("kind", sorted(NAMES))
def test_hostile_names(cli_run: Callable[..., Any], tmp_path: Path, command: str, kind: str) -> None:
    """A file name and a --dataset that are not valid text."""
    folder = tmp_path / "in"
    folder.mkdir()
    name = NAMES[kind][:60]  # a file name holds at most 255 bytes
    src = folder / (name + (".jsonl" if command == "audit-ingest" else ".csv"))
    if command == "audit-ingest":
        src.write_text(json.dumps({"ts": "2026-01-01T00:00:00+00:00", "action": "query"}) + "\n")
    else:
        src.write_text(GOOD_CSV, encoding="utf-8")
    before = _events(tmp_path)
    args = _commands(str(src), str(tmp_path / "out.csv"))[command]
    if command in ("scan", "mask", "watermark-embed", "watermark-detect"):
        args += ["--dataset", NAMES[kind]]
    _clean(cli_run(*args))
    assert _events(tmp_path) > before


def test_a_failed_command_leaves_one_event_naming_it(cli_run: Callable[..., Any], tmp_path: Path) -> None:
    """An accusation level out of range: the detection is refused before its use case runs
    (a detection its use case got to, e.g. with no copy issued, records its own event)."""
    src = tmp_path / "suspect.csv"
    src.write_text(GOOD_CSV, encoding="utf-8")
    result = cli_run("watermark", "detect", str(src), "--alpha", "5e-324")
    assert result.exit_code == 2, result.stdout
    container = build_container(make_settings(tmp_path))
    try:
        with container.session() as session:
            docs = [json.loads(e.body) for e in container.audit.store.iter_range(session, 1)]
    finally:
        container.close()
    (doc,) = [d for d in docs if d["event"]["action"].startswith("cli.")]
    assert doc["event"]["action"] == "cli.watermark.detect" and doc["event"]["outcome"] == "failure"
    assert doc["audit"]["effect"] == "error" and doc["labels"]["exit_code"] == "2"
    assert doc["user"]["id"] == "local-operator" and "--alpha must be" in doc["event"]["reason"]


def test_an_argument_that_is_not_text_is_refused_by_name(cli_run: Callable[..., Any], tmp_path: Path) -> None:
    src = tmp_path / os.fsdecode(b"\xffbad.csv")
    src.write_text(GOOD_CSV, encoding="utf-8")
    result = cli_run("scan", str(src))
    assert result.exit_code == 2
    assert "not valid UTF-8 text" in result.stderr and "\\udcffbad.csv" in result.stderr
