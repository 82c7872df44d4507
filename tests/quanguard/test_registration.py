"""Routes and commands are registered explicitly, in one list each: nothing is found by
file name (a new file that is not listed is a test failure, not a silent extra)."""

from __future__ import annotations

import re
from pathlib import Path

import quanguard
from quanguard.api.app import route_modules
from quanguard.cli.main import COMMANDS

ROOT = Path(quanguard.__file__).parent


def test_every_routes_module_is_mounted_in_the_listed_order() -> None:
    on_disk = sorted(p.stem for p in (ROOT / "api").glob("routes_*.py"))
    listed = [m.__name__.rsplit(".", 1)[1] for m in route_modules()]
    assert sorted(listed) == on_disk
    assert len(set(listed)) == len(listed)


def test_every_command_module_is_listed() -> None:
    on_disk = {p.stem for p in (ROOT / "cli").glob("cmd_*.py")}
    assert {module for module, _help in COMMANDS.values()} == on_disk


def test_nothing_is_discovered_by_file_name() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                 if re.search(r"\bpkgutil\b|iter_modules", p.read_text(encoding="utf-8"))]
    assert offenders == []
