"""Database engine, the declarative base of the service's own tables, and migrations.

SQLite (WAL, busy timeout) is the embedded default, its files 0600 in a 0700 folder;
PostgreSQL is used by URL. Schema
changes go through Alembic only: :func:`migrate` runs ``upgrade heads`` (each area owns one
branch, see CONTRIBUTING.md) unless the store is already at every head.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = [
    "READ_ONLY",
    "Base",
    "head_versions",
    "make_engine",
    "migrate",
    "normalize_url",
    "ping",
    "private_dir",
    "secure_sqlite_file",
]

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Execution option marking a connection whose transactions only read.
READ_ONLY = "quanguard_read_only"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs (the driver installed with the service)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def private_dir(path: Path) -> None:
    """Create ``path`` (and parents) as 0700; tighten it when it is looser."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)


def secure_sqlite_file(database: Path) -> None:
    """The SQLite file (and its -wal/-shm companions) exist as 0600 in a 0700 folder.

    The file is created empty with mode 0600 before SQLite opens it (SQLite gives the
    companions the main file's mode); an existing file that is looser is tightened."""
    private_dir(database.parent)
    try:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    for path in (database, database.with_name(database.name + "-wal"),
                 database.with_name(database.name + "-shm")):
        if path.exists() and path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)


def make_engine(db_url: str, *, schema: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine; the SQLite file's folder is created, WAL and a busy timeout set.

    ``schema`` (PostgreSQL only) puts every table in that schema via ``search_path``,
    which is how the tests give each run a database of its own.
    """
    url = make_url(normalize_url(db_url))
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            secure_sqlite_file(Path(database))
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            # The service manages transactions itself (BEGIN IMMEDIATE below) so that
            # two writers never deadlock on a lock upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # Read-only work (see READ_ONLY) takes a deferred transaction and so never
            # waits behind a writer in WAL mode.
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if schema:
        kwargs.setdefault("connect_args", {"options": f"-csearch_path={schema}"})
    return create_engine(url, **kwargs)


_MIGRATIONS = Path(__file__).parent / "migrations"


def head_versions() -> frozenset[str]:
    """The rows of ``alembic_version`` in a store at every head, read from the scripts
    without loading Alembic.

    Each file under ``migrations/versions`` names its ``revision``, ``down_revision`` and
    ``depends_on`` (a name, a tuple of names, or None) as literals. A head is a revision no
    other revises; Alembic stores a head only when no other head descends from it or depends
    on it (directly or further back), and so does this. A file these cannot be read from
    raises ValueError. A test checks the result against what Alembic writes."""
    import ast

    parents: dict[str, set[str]] = {}
    revised: set[str] = set()
    for path in sorted((_MIGRATIONS / "versions").glob("*.py")):
        found: dict[str, Any] = {}
        for node in ast.parse(path.read_bytes(), str(path)).body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id in ("revision", "down_revision", "depends_on")):
                found[node.targets[0].id] = ast.literal_eval(node.value)
        revision = found.get("revision")
        if not isinstance(revision, str) or "down_revision" not in found:
            raise ValueError(f"{path.name}: no literal revision and down_revision")
        down = _names(path, found["down_revision"])
        revised.update(down)
        parents[revision] = down | _names(path, found.get("depends_on"))
    heads = set(parents) - revised
    below: set[str] = set()
    todo = [p for head in heads for p in parents[head]]
    while todo:
        rev = todo.pop()
        if rev not in below:
            below.add(rev)
            todo.extend(parents.get(rev, ()))
    return frozenset(heads - below)


def _names(path: Path, value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
        return set(value)
    raise ValueError(f"{path.name}: a revision reference is not a name, a tuple or None")


def _at_heads(engine: Engine) -> bool:
    """Whether the store's ``alembic_version`` rows are exactly :func:`head_versions`.

    Anything else — no version table, a store behind, a branch missing, a revision this
    release does not know, a database that does not answer, scripts that cannot be read —
    is False, and Alembic decides as it always did."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        wanted = head_versions()
        with engine.execution_options(**{READ_ONLY: True}).connect() as conn:
            stored = [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    except (SQLAlchemyError, OSError, SyntaxError, ValueError):
        return False
    return len(stored) == len(wanted) and set(stored) == wanted


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision of every area (``alembic upgrade heads``).

    A store already at every head is left alone without loading Alembic (a saving of
    every CLI start, issue 15); any other store goes through ``upgrade heads``."""
    if _at_heads(engine):
        return
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.exc import OperationalError

    from quanguard.errors import Unavailable

    here = Path(__file__).parent
    cfg = Config()
    cfg.set_main_option("script_location", str(here / "migrations"))
    cfg.attributes["engine"] = engine
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")
            return
        except OperationalError as exc:
            # A store locked by another writer (SQLite) or a database that went away:
            # retry briefly, then tell the operator instead of failing with a trace.
            if attempt == 2:
                raise Unavailable(f"database busy or unreachable while migrating: {exc.orig}") from exc
            time.sleep(1.0 + attempt)


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query."""
    with engine.execution_options(**{READ_ONLY: True}).connect() as conn:
        conn.execute(text("SELECT 1"))
