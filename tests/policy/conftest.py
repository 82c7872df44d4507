"""Fixtures for the policy tests: a private copy of the shipped policy directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "policies"


class PolicyCopy:
    """A copy of ``policies/`` in a temp dir, with helpers to break it on purpose."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(SHIPPED, root, ignore=shutil.ignore_patterns("__pycache__"))

    def path(self, name: str) -> Path:
        return self.root / name

    def replace(self, name: str, old: str, new: str) -> None:
        text = self.path(name).read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {name}"
        self.path(name).write_text(text.replace(old, new, 1), encoding="utf-8")

    def append(self, name: str, text: str) -> None:
        with self.path(name).open("a", encoding="utf-8") as fh:
            fh.write(text)

    def line_of(self, name: str, needle: str, nth: int = 1) -> int:
        """1-based line of the ``nth`` line containing ``needle``."""
        seen = 0
        for number, line in enumerate(self.path(name).read_text(encoding="utf-8").splitlines(), 1):
            if needle in line:
                seen += 1
                if seen == nth:
                    return number
        raise AssertionError(f"{needle!r} not found {nth} time(s) in {name}")

    def display(self, name: str) -> str:
        return str(self.root / name)


@pytest.fixture
def policy_copy(tmp_path: Path) -> PolicyCopy:
    return PolicyCopy(tmp_path / "policies")
