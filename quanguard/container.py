"""The container: one instance of the service's settings, database and services.

Areas' services are built lazily on first use (``cached_property``), each importing its
module only then, so a command that needs only the database loads only the database.

On a SQLite file the units of work of one process take turns on one writer connection
(:data:`WRITE_CACHE_KIB`): SQLite admits one writer at a time anyway, and a connection's
page cache is dropped whenever another connection commits, so writers that each took a
pooled connection re-read the trail's index pages on every transaction and polled
SQLite's busy handler (sleeps of up to 100 ms) for their turn.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from quanguard.config import Settings
from quanguard.db import READ_ONLY, make_engine, migrate, private_dir
from quanguard.errors import Conflict
from quanguard.metrics import Metrics

if TYPE_CHECKING:  # the areas' services load on first use, not with the container
    from exchange import Exchange
    from monitor.search import SearchBackend
    from quanguard.api.recording import RequestRecorder
    from quanguard.console.sessions import SessionStore
    from quanguard.policy_sync import PolicySync
    from quanguard.ratelimit import FailureLimiter
    from quanguard.services.alerts import AlertService
    from quanguard.services.audit import AuditService
    from quanguard.services.mask import MaskService
    from quanguard.services.policy import PolicyService
    from quanguard.services.scan import ScanService
    from quanguard.services.watermark import WatermarkService

__all__ = ["WAL_BACKSTOP_PAGES", "WAL_CHECKPOINT_ROWS", "WRITE_CACHE_KIB", "WRITE_TURN_WAIT_S", "Container", "build_container"]

_T = TypeVar("_T")

#: Page cache (KiB) of the SQLite writer connection: a 1,000-event batch dirties thousands
#: of index pages (the trail's ids are random), and with SQLite's default 2 MiB most of
#: them were re-read from the file on every batch.
WRITE_CACHE_KIB = 16_384

#: Rows the writer connection changes before the units of work checkpoint the WAL: about
#: SQLite's own auto-checkpoint of 1,000 pages (a trail event dirties a few index pages).
WAL_CHECKPOINT_ROWS = 256

#: SQLite's own auto-checkpoint on the writer connection, a backstop (pages; default 1,000).
WAL_BACKSTOP_PAGES = 10_000

#: How long a unit of work waits for its turn on the writer connection (seconds). Past
#: it the unit goes ahead on a connection of its own and SQLite's busy timeout and the
#: use cases' retries apply as they would without turns: waiting here never makes a write
#: fail that would have succeeded.
WRITE_TURN_WAIT_S = 30.0


class Container:
    """Holds what one running service (or one CLI command) shares."""

    # Built on first use, under ``lock``, by the HTTP layer and the console.
    _request_recorder: RequestRecorder | None = None
    _console_sessions: SessionStore | None = None
    _console_vocab: tuple[float, dict[str, list[str]]] | None = None
    _policy_sync: PolicySync | None = None  # PostgreSQL: reloads announced across workers
    _auth_limiter: FailureLimiter | None = None

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.session: Callable[[], Session] = sessionmaker(engine, expire_on_commit=False)
        # For work that only reads (authentication, health): never queues behind a writer.
        self.read_session: Callable[[], Session] = sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        self.metrics = Metrics()
        self.lock = threading.RLock()
        self._closers: list[Callable[[], None]] = []
        # SQLite file: writes take turns on one connection (module docstring). Re-entrant,
        # so a unit of work opened inside another in the same thread behaves as before.
        self._write_turn: threading.RLock | None = None
        self._checkpointing = threading.Lock()
        self._unsynced = 0  # rows the writer changed since the last checkpoint began (approx.)
        self._local = threading.local()  # depth of units of work in this thread
        self._writer: Engine | None = _sqlite_writer(engine)
        if self._writer is not None:
            self.session = sessionmaker(self._writer, expire_on_commit=False)
            self._write_turn = threading.RLock()
            event.listen(self._writer, "checkin", self._count_changes)

    def _count_changes(self, dbapi_conn: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
        # a writer connection back in the pool: add the rows it changed since it was last
        # returned (``sqlite3.Connection.total_changes``)
        total = getattr(dbapi_conn, "total_changes", None)
        if isinstance(total, int):
            self._unsynced += total - int(record.info.get("changes", 0))
            record.info["changes"] = total
        if self._unsynced >= WAL_CHECKPOINT_ROWS and not getattr(self._local, "depth", 0):
            self._checkpoint_wal()  # a session of its own, not a unit of work: now

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: the session commits when the block ends and rolls back when it
        raises. Stores take the session and never commit; use cases open the unit of work.

        On SQLite the units of work of this process take turns (at most
        :data:`WRITE_TURN_WAIT_S` of waiting, then the unit goes ahead on its own)."""
        turn = self._write_turn
        took = turn is not None and turn.acquire(timeout=WRITE_TURN_WAIT_S)
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            with self.session() as session, session.begin():
                yield session
        finally:
            self._local.depth -= 1
            if took:
                assert turn is not None
                turn.release()
        if turn is not None and self._unsynced >= WAL_CHECKPOINT_ROWS:
            self._checkpoint_wal()

    def _checkpoint_wal(self) -> None:
        """Copy the committed WAL into the database file (``PRAGMA wal_checkpoint(PASSIVE)``:
        it syncs the WAL, then the file) after a unit of work, outside the writers' turn.

        SQLite's auto-checkpoint would do it inside the commit, while the next writer waits
        for its turn; on the writer connection it is only a backstop
        (:data:`WAL_BACKSTOP_PAGES`).
        Passive: it waits for no lock and leaves what a running transaction holds to the
        next checkpoint; one thread checkpoints at a time, as SQLite allows (a unit of work
        that finds a checkpoint running leaves its pages to that one or the next)."""
        if not self._checkpointing.acquire(blocking=False):
            return
        try:
            self._unsynced = 0
            # as SQLite's auto-checkpoint, a failure here fails no write (it is committed):
            # the next checkpoint copies these pages
            with contextlib.suppress(Exception):
                raw = self.engine.raw_connection()
                try:
                    cur = raw.cursor()
                    cur.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    cur.close()
                finally:
                    raw.close()
        finally:
            self._checkpointing.release()

    # --- area services -------------------------------------------------------------
    @cached_property
    def policy(self) -> PolicyService:
        """Every policy file of one version: decisions, masking profiles, alert rules."""
        from quanguard.services.policy import build_policy

        return build_policy(self)

    @cached_property
    def audit(self) -> AuditService:
        from quanguard.services.audit import build_audit

        return build_audit(self)

    @cached_property
    def search(self) -> SearchBackend:
        from quanguard.services.search import build_search

        return build_search(self)

    @cached_property
    def alerts(self) -> AlertService:
        from quanguard.services.alerts import build_alerts

        return build_alerts(self)

    @cached_property
    def scanner(self) -> ScanService:
        from quanguard.services.scan import build_scanner

        return build_scanner(self)

    @cached_property
    def masker(self) -> MaskService:
        from quanguard.services.mask import build_masker

        return build_masker(self)

    @cached_property
    def watermarker(self) -> WatermarkService:
        from quanguard.services.watermark import build_watermarker

        return build_watermarker(self)

    @cached_property
    def exchange(self) -> Exchange:
        from quanguard.services.exchange import build_exchange

        return build_exchange(self)

    def shared(self, attr: str, build: Callable[[], _T]) -> _T:
        """The one object of this container kept in ``attr``, built by ``build`` on first use
        (under ``lock``, so threads that ask at once get the same object)."""
        with self.lock:
            found: _T | None = getattr(self, attr, None)
            if found is None:
                found = build()
                setattr(self, attr, found)
            return found

    # --- lifecycle -----------------------------------------------------------------
    def on_close(self, fn: Callable[[], None]) -> None:
        """Register a cleanup (a background thread's stop, a client's close)."""
        self._closers.append(fn)

    def close(self) -> None:
        while self._closers:
            fn = self._closers.pop()
            with contextlib.suppress(Exception):  # closing must go on for the others
                fn()
        if self._writer is not None:
            self._writer.dispose()
        self.engine.dispose()


def _sqlite_writer(engine: Engine) -> Engine | None:
    """The writer engine of a SQLite file store: the same file and set-up as ``engine``
    (WAL, busy timeout, ``BEGIN IMMEDIATE``), one pooled connection reused last-in
    first-out with a :data:`WRITE_CACHE_KIB` page cache. None for other stores (PostgreSQL,
    in-memory or URI SQLite, where a second engine would not share the same database)."""
    url = engine.url
    database = url.database or ""
    if (url.get_backend_name() != "sqlite" or not database or database == ":memory:"
            or database.startswith("file:")):
        return None
    # A unit of work that could not wait for its turn opens an extra connection, closed
    # when it is done: only the writer connection keeps its (large) cache.
    writer = make_engine(url.render_as_string(hide_password=False), poolclass=QueuePool,
                         pool_size=1, max_overflow=15, pool_use_lifo=True)

    @event.listens_for(writer, "connect")
    def _cache(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA cache_size=-{WRITE_CACHE_KIB}")
        # Container._checkpoint_wal checkpoints after the commit, outside the writers' turn;
        # SQLite's own (inside the commit) stays as a backstop for a very large transaction
        cur.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
        cur.close()

    return writer


def build_container(settings: Settings, *, schema: str | None = None, run_migrations: bool = True) -> Container:
    """Create the engine, make the key and data folders (0700, tightened when looser),
    and migrate the store.

    Raises Conflict when the keys are still in the old default place (``<data>/keys``)
    and the configured key folder has none: starting would create new keys that open
    nothing (datasets, checkpoints) stored so far."""
    _refuse_stranded_keys(settings)
    private_dir(settings.data_dir)
    private_dir(settings.key_dir)
    engine = make_engine(settings.db_url, schema=schema)
    if run_migrations:
        migrate(engine)
    return Container(settings, engine)


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


def _refuse_stranded_keys(settings: Settings) -> None:
    legacy = Path(settings.data_dir) / "keys"
    if legacy.resolve() == Path(settings.key_dir).resolve():
        return
    if _has_files(legacy) and not _has_files(Path(settings.key_dir)):
        raise Conflict(
            f"keys found in {legacy} (the old default, inside the data folder) but none in "
            f"the key folder {settings.key_dir}; move them there (`mv {legacy} "
            f"{settings.key_dir}`) or set QUANGUARD_KEY_DIR, so that stored data still opens"
        )
