"""Alembic: every area branches from the foundation and `upgrade heads` builds the schema."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, inspect, text

import quanguard
from quanguard.container import Container
from quanguard.db import head_versions, make_engine, migrate

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
    tables = set(inspect(any_container.engine).get_table_names())
    assert {"principals", "service_state", "alembic_version"} <= tables
    migrate(any_container.engine)  # a second run changes nothing and does not fail
    assert set(inspect(any_container.engine).get_table_names()) == tables


# --- a store already at the heads is not migrated again (start-up cost, issue 15) ---------

def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(VERSIONS.parent))
    cfg.attributes["engine"] = engine
    return cfg


@functools.cache
def _alembic_heads() -> frozenset[str]:
    """What Alembic itself stores in ``alembic_version`` after ``upgrade heads``."""
    from alembic import command

    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        cfg = _alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
    versions = frozenset(_stored_versions(engine))
    engine.dispose()
    return versions


def _stored_versions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))}


def _index_names(engine: Engine) -> set[str]:
    # read directly: reflection warns about the expression index of 0014_workers
    sql = ("SELECT name FROM sqlite_master WHERE type = 'index'" if engine.dialect.name == "sqlite"
           else "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(text(sql))}


@pytest.fixture
def upgrades(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The targets of every ``alembic upgrade`` the code under test runs (which still run)."""
    from alembic import command

    calls: list[str] = []
    real = command.upgrade

    def spy(config: Config, revision: str, **kwargs: Any) -> None:
        calls.append(revision)
        real(config, revision, **kwargs)

    monkeypatch.setattr(command, "upgrade", spy)
    return calls


@pytest.fixture
def bare_engine(db_backend: tuple[str, str | None]) -> Iterator[Engine]:
    url, schema = db_backend
    engine = make_engine(url, schema=schema)
    yield engine
    engine.dispose()


def test_head_versions_are_alembics() -> None:
    assert set(head_versions()) == _alembic_heads()


def test_a_store_at_the_heads_is_not_upgraded(any_container: Container, upgrades: list[str]) -> None:
    assert _stored_versions(any_container.engine) == _alembic_heads()
    migrate(any_container.engine)
    assert upgrades == []


def test_a_new_store_without_a_version_table_is_built(bare_engine: Engine, upgrades: list[str]) -> None:
    migrate(bare_engine)
    assert upgrades == ["heads"]
    assert _stored_versions(bare_engine) == _alembic_heads()
    assert "audit_events" in inspect(bare_engine).get_table_names()


def test_an_old_store_is_upgraded(bare_engine: Engine, upgrades: list[str]) -> None:
    from alembic import command

    with bare_engine.begin() as conn:  # a store of before the audit_search branch existed
        cfg = _alembic_config(bare_engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002_monitor")
    upgrades.clear()
    assert _stored_versions(bare_engine) == {"0002_monitor"}
    migrate(bare_engine)
    assert upgrades == ["heads"]
    assert _stored_versions(bare_engine) == _alembic_heads()
    assert "ix_audit_events_org_grade_seq" in _index_names(bare_engine)


def test_a_store_missing_one_branch_is_upgraded(any_container: Container, upgrades: list[str]) -> None:
    engine = any_container.engine
    with engine.begin() as conn:  # as if the audit_search branch had been added since
        for name in ("ix_audit_events_org_grade_seq", "ix_audit_events_dataset_action_ts"):
            conn.execute(text(f"DROP INDEX {name}"))
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0017_audit_search'"))
    migrate(engine)
    assert upgrades == ["heads"]
    assert _stored_versions(engine) == _alembic_heads()
    assert "ix_audit_events_dataset_action_ts" in _index_names(engine)


@pytest.mark.parametrize("extra", ["0099_from_a_newer_release", "0001_foundation"])
def test_a_store_ahead_or_with_an_odd_version_is_left_to_alembic(
        any_container: Container, upgrades: list[str], extra: str) -> None:
    """A revision this release does not know (a newer release's store) is refused as
    before; a version row that is not a head also goes through alembic."""
    engine = any_container.engine
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": extra})
    if extra.startswith("0099"):
        with pytest.raises(CommandError, match="0099_from_a_newer_release"):
            migrate(engine)
    else:
        try:
            migrate(engine)
        except CommandError:
            pass
    assert upgrades == ["heads"]
