"""Docs are tested (STYLE.md 15): every CLI command has help and appears in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer._click.core import Command

from quanguard.cli.main import build_app

REPO = Path(__file__).resolve().parent.parent


def _commands() -> list[tuple[str, str]]:
    """(full command, help text) of every leaf command."""
    root = typer.main.get_command(build_app())
    found: list[tuple[str, str]] = []

    def walk(cmd: Command, prefix: str) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, f"{prefix} {name}")
        else:
            found.append((prefix, (cmd.help or "").strip()))

    walk(root, "quanguard")
    return found


COMMANDS = _commands()


@pytest.mark.parametrize("command, help_text", COMMANDS, ids=[c for c, _ in COMMANDS])
def test_command_has_help_and_is_in_readme(command: str, help_text: str) -> None:
    assert help_text, f"{command} has no help text (its docstring is its --help)"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"`{command}" in readme, f"{command} is not documented in README.md"


def test_readme_opens_with_the_two_commands() -> None:
    head = (REPO / "README.md").read_text(encoding="utf-8")[:600]
    assert "make run" in head and "make test" in head
