"""The failed-authentication limit, shared by every worker process through the database.

Each failed authentication adds one to its source address's counter for the current
10-second bucket (one upsert; ``auth_failures``). A source is refused (``RateLimited``,
429) while the buckets of the last minute hold ``auth_fail_limit`` failures or more —
whichever worker saw them. Because whole buckets are summed, a failure counts for at
least 60 and at most 70 seconds. Checking is one indexed read; a successful
authentication writes nothing.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa

from quanguard.errors import RateLimited
from quanguard.shared_state import AUTH_FAILURES

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from quanguard.container import Container

__all__ = ["BUCKET_SECONDS", "WINDOW_SECONDS", "FailureLimiter", "limiter"]

BUCKET_SECONDS = 10
WINDOW_SECONDS = 60
_SPAN = WINDOW_SECONDS // BUCKET_SECONDS  # buckets before the current one that still count
_MAX_SOURCE = 64


def _bucket(now: float) -> int:
    return int(now) // BUCKET_SECONDS


def _source(source: str) -> str:
    return (source or "unknown")[:_MAX_SOURCE]


class FailureLimiter:
    """Failed authentications per source address over the last minute, in the database."""

    def __init__(self, container: Container, clock: Callable[[], float] = time.time) -> None:
        self._container = container
        self._clock = clock
        self._swept = -1
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        return int(self._container.settings.auth_fail_limit)

    def failures(self, source: str, session: Session | None = None) -> int:
        """Failures of ``source`` counted against the limit now."""
        stmt = (sa.select(sa.func.coalesce(sa.func.sum(AUTH_FAILURES.c.count), 0))
                .where(AUTH_FAILURES.c.source == _source(source),
                       AUTH_FAILURES.c.bucket >= _bucket(self._clock()) - _SPAN))
        if session is not None:
            return int(session.execute(stmt).scalar_one())
        with self._container.read_session() as s:
            return int(s.execute(stmt).scalar_one())

    def check(self, source: str, session: Session | None = None) -> None:
        """Raise RateLimited while ``source`` is over the limit (a read, never a write)."""
        if self.failures(source, session) >= self.limit:
            raise RateLimited("too many failed authentications from this address; wait a minute")

    def fail(self, source: str) -> None:
        """Count one failed authentication of ``source`` (and forget expired buckets)."""
        bucket = _bucket(self._clock())
        values = {"source": _source(source), "bucket": bucket, "count": 1}
        with self._container.unit_of_work() as session:
            dialect = session.get_bind().dialect.name
            keys = [AUTH_FAILURES.c.source, AUTH_FAILURES.c.bucket]
            bump = {"count": AUTH_FAILURES.c.count + 1}
            if dialect == "postgresql":
                from sqlalchemy.dialects import postgresql
                pg = postgresql.insert(AUTH_FAILURES).values(**values)
                session.execute(pg.on_conflict_do_update(index_elements=keys, set_=bump))
            else:
                from sqlalchemy.dialects import sqlite
                lite = sqlite.insert(AUTH_FAILURES).values(**values)
                session.execute(lite.on_conflict_do_update(index_elements=keys, set_=bump))
            with self._lock:
                sweep, self._swept = self._swept != bucket, bucket
            if sweep:
                session.execute(AUTH_FAILURES.delete().where(
                    AUTH_FAILURES.c.bucket < bucket - _SPAN))


def limiter(container: Container) -> FailureLimiter:
    """The container's limiter (one per process; the counts are in the database)."""
    return container.shared("_auth_limiter", lambda: FailureLimiter(container))
