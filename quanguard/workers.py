"""Running the HTTP service in several worker processes (``quanguard serve --workers N``).

``default_workers(db_url)`` picks the number and says why: one per core on PostgreSQL
(appenders serialise on the audit head row; batches amortise the lock), and one on
SQLite (one writer at a time: more processes would only queue on the file lock).
``worker_app()`` is the factory each uvicorn worker process calls: it builds its own
container from the same ``QUANGUARD_*`` environment (the parent migrated the store
before forking, so workers never migrate concurrently).

What the workers share lives in the database: the audit trail and its head lock,
alerts, keys, the inventory, the exchange, console sessions and the failed-authentication
counters (``quanguard.shared_state``). Policy reloads reach every worker through
PostgreSQL ``LISTEN/NOTIFY`` (``quanguard.policy_sync``). The alert engine's running
counters notice another worker's appends (a gap in seqs) and reload from the trail.
"""

from __future__ import annotations

import gc
import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["SERVE_GC_THRESHOLD", "SHARED_STATE", "check_workers", "cores", "default_workers",
           "serving_collector", "worker_app"]

_log = logging.getLogger("quanguard.workers")

SHARED_STATE = ("console sessions", "auth-failure limits", "policy reloads")

#: The cyclic collector's thresholds in a serving process (the default is 700, 10, 10).
#: A batch POST allocates some 50,000 objects that reference counting frees when it ends;
#: at the default every request ran dozens of young collections and, now and then, a full
#: one over everything the service loaded (measured: about 10% of batch POST throughput).
SERVE_GC_THRESHOLD = (20_000, 20, 100)


def serving_collector() -> None:
    """Tune the cyclic garbage collector of a process that is about to serve: what it has
    loaded so far (modules, the container, the app) is frozen — kept out of every later
    collection, it lives as long as the process — and young collections run less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVE_GC_THRESHOLD)


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_workers(db_url: str) -> tuple[int, str]:
    """The default number of workers for ``db_url`` and the reason, for the log."""
    if db_url.startswith("postgresql"):
        n = cores()
        return n, (f"PostgreSQL: one worker per core ({n} core{'s' if n > 1 else ''}); "
                   f"{', '.join(SHARED_STATE)} are shared through the database")
    return 1, "SQLite allows one writer at a time: more workers would queue on its lock"


def check_workers(db_url: str, workers: int) -> None:
    """Refuse several workers on SQLite (fail closed, not a silent slowdown)."""
    from quanguard.errors import InvalidInput

    if workers < 1:
        raise InvalidInput("--workers must be at least 1")
    if workers > 1 and not db_url.startswith("postgresql"):
        raise InvalidInput("--workers above 1 needs PostgreSQL (QUANGUARD_DB_URL=postgresql+psycopg://...); "
                           "SQLite allows one writer at a time")


def worker_app() -> FastAPI:
    """The ASGI app of one worker process (uvicorn ``factory=True``)."""
    from quanguard.api.app import create_app
    from quanguard.config import load_settings
    from quanguard.container import build_container
    from quanguard.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    container = build_container(settings, run_migrations=False)
    _log.info("worker %d serving (store %s)", os.getpid(), settings.db_url.split("@")[-1])
    app = create_app(container)
    serving_collector()
    return app
