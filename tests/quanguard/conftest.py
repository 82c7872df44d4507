"""Fixtures of the service's tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from quanguard.cli.main import build_app
from tests.conftest import POLICY_DIR


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``run("keys", "create", ...)``: the root CLI in a fresh folder (its own store, keys
    and data there), with the shipped policies and no API key in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUANGUARD_API_KEY", raising=False)
    for var in ("QUANGUARD_DB_URL", "QUANGUARD_KEY_DIR", "QUANGUARD_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("QUANGUARD_POLICY_DIR", str(POLICY_DIR))
    app = build_app()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))
