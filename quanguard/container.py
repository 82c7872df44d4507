"""The container: one instance of the service's settings, database and services.

Areas' services are built lazily on first use (``cached_property``), each importing its
module only then, so a command that needs only the database loads only the database.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

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

__all__ = ["Container", "build_container"]

_T = TypeVar("_T")


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

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: the session commits when the block ends and rolls back when it
        raises. Stores take the session and never commit; use cases open the unit of work."""
        with self.session() as session, session.begin():
            yield session

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
        self.engine.dispose()


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
