"""The container: one instance of the service's settings, database and services.

Areas' services are built lazily on first use (``cached_property``), each importing its
module only then, so a command that needs only the database loads only the database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from quanguard.config import Settings
from quanguard.db import READ_ONLY, make_engine, migrate, private_dir
from quanguard.errors import Conflict
from quanguard.metrics import Metrics

__all__ = ["Container", "build_container"]


class _CountingPolicy:
    """Delegates to the policy service and counts every decision by effect."""

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def decide(self, *args: Any, **kwargs: Any) -> Any:
        decision = self._inner.decide(*args, **kwargs)
        self._metrics.decisions.labels(effect=str(decision.effect)).inc()
        return decision

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Container:
    """Holds what one running service (or one CLI command) shares."""

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

    # --- area services -------------------------------------------------------------
    @cached_property
    def policy(self) -> Any:
        """Every policy file of one version: decisions, masking profiles, alert rules.
        Automatic reloads (files changed on disk) are audited as the service's own; on
        PostgreSQL every reload is announced to the service's other processes
        (``quanguard.policy_sync``)."""
        from quanguard.policy import PolicyService
        from quanguard.policy_sync import policy_sync
        from quanguard.usecases.policy import audit_automatic_reloads

        service = PolicyService.load(self.settings.policy_dir, tz=self.settings.tz)
        counting = _CountingPolicy(service, self.metrics)
        self.__dict__["policy"] = counting  # the listener below reads container.policy
        audit_automatic_reloads(self)
        policy_sync(self, service)  # PostgreSQL: announce reloads to the other workers
        return counting

    @cached_property
    def audit(self) -> Any:
        from quanguard.audit import AuditService

        return AuditService(self)

    @cached_property
    def search(self) -> Any:
        from quanguard.services.search import build_search

        return build_search(self)

    @cached_property
    def alerts(self) -> Any:
        from quanguard.services.alerts import build_alerts

        return build_alerts(self)

    @cached_property
    def scanner(self) -> Any:
        from quanguard.services.scan import build_scanner

        return build_scanner(self)

    @cached_property
    def masker(self) -> Any:
        from quanguard.services.mask import build_masker

        return build_masker(self)

    @cached_property
    def watermarker(self) -> Any:
        from quanguard.services.watermark import build_watermarker

        return build_watermarker(self)

    @cached_property
    def exchange(self) -> Any:
        from quanguard.services.exchange import build_exchange

        return build_exchange(self)

    # --- lifecycle -----------------------------------------------------------------
    def on_close(self, fn: Callable[[], None]) -> None:
        """Register a cleanup (a background thread's stop, a client's close)."""
        self._closers.append(fn)

    def close(self) -> None:
        while self._closers:
            fn = self._closers.pop()
            try:
                fn()
            except Exception:  # noqa: BLE001 - closing must go on for the others
                pass
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
