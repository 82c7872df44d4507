"""Alembic: every area branches from the foundation and `upgrade heads` builds the schema."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from sqlalchemy import inspect

import quanguard
from quanguard.container import Container

VERSIONS = Path(quanguard.__file__).parent / "migrations" / "versions"


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_revisions_branch_from_foundation() -> None:
    revisions = [_load(p) for p in sorted(VERSIONS.glob("0*.py"))]
    ids = [m.revision for m in revisions]
    assert len(ids) == len(set(ids))
    for m in revisions:
        if m.revision == "0001_foundation":
            assert m.down_revision is None
        else:
            assert m.down_revision == "0001_foundation", m.revision
            assert m.branch_labels, m.revision


def test_upgrade_heads_creates_tables_and_is_idempotent(any_container: Container) -> None:
    from quanguard.db import migrate

    tables = set(inspect(any_container.engine).get_table_names())
    assert {"principals", "service_state", "alembic_version"} <= tables
    migrate(any_container.engine)  # a second run changes nothing and does not fail
    assert set(inspect(any_container.engine).get_table_names()) == tables
