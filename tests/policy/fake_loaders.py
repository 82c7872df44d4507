"""Stand-ins for other areas' loaders, used by test_foreign.py."""

from __future__ import annotations

from pathlib import Path


class FakeLoaderError(Exception):
    kind = "invalid"

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(message)
        self.path, self.line, self.message = str(path), line, message


def load_ok(path: Path) -> object:
    return {"ok": str(path)}


def load_bad(path: Path) -> object:
    raise FakeLoaderError(path, 7, "operator 'blurr' is not defined")


class FakeProfiles:
    names = ("开放", "共享", "分析")


def load_profiles(path: Path) -> FakeProfiles:
    return FakeProfiles()
