"""The shipper: copies committed audit events from the SQL store to a search sink.

The SQL store is the spool and stays the source of truth. The shipper reads events after
its high-water mark (``shipper_state``), writes them to the sink in bulk, then advances
the mark. Writes are idempotent (the Elasticsearch sink ``create``s by event id), so a
crash between the write and the mark only re-sends a batch that the sink answers with
"exists": an outage or a restart loses nothing and duplicates nothing.

On failure it retries the same batch with exponential backoff (full jitter, capped) and
exposes its lag (head seq minus shipped seq), its state and the last error.

    spool (SQL, committed) ──read_after(mark)──▶ Shipper ──write(batch)──▶ sink (ES)
                         ◀──────save_mark(last seq of the batch)──────┘
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor.events import AuditEvent
from monitor.store import EVENTS, HEAD, SHIPPER_STATE

_log = logging.getLogger("monitor.shipper")


class Spool(Protocol):
    """Where committed events wait (the SQL store) and where the mark is kept."""

    def read_after(self, seq: int, limit: int) -> list[AuditEvent]: ...

    def head_seq(self) -> int: ...

    def load_mark(self, name: str) -> int: ...

    def save_mark(self, name: str, seq: int) -> None: ...


class Sink(Protocol):
    """Takes stored events; writing the same event twice must not duplicate it."""

    def write(self, events: Sequence[AuditEvent]) -> Any: ...


class SqlSpool:
    """The SQL audit store as a spool. Each call runs in its own short transaction
    (the shipper is a background job: it is the caller that owns them)."""

    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._session = session_factory

    def read_after(self, seq: int, limit: int) -> list[AuditEvent]:
        with self._session() as session, session.begin():
            rows = session.execute(
                sa.select(EVENTS.c.body).where(EVENTS.c.seq > seq)
                .order_by(EVENTS.c.seq).limit(limit)).all()
        return [AuditEvent.from_json(body) for (body,) in rows]

    def head_seq(self) -> int:
        with self._session() as session, session.begin():
            value = session.execute(sa.select(sa.func.max(HEAD.c.seq))).scalar()
        return int(value or 0)

    def load_mark(self, name: str) -> int:
        with self._session() as session, session.begin():
            value = session.execute(
                sa.select(SHIPPER_STATE.c.seq).where(SHIPPER_STATE.c.name == name)).scalar()
        return int(value or 0)

    def save_mark(self, name: str, seq: int) -> None:
        now = int(time.time() * 1_000_000)
        with self._session() as session, session.begin():
            done = session.execute(
                sa.update(SHIPPER_STATE).where(SHIPPER_STATE.c.name == name)
                .values(seq=seq, updated=now))
            if not done.rowcount:  # type: ignore[attr-defined]
                session.execute(sa.insert(SHIPPER_STATE).values(name=name, seq=seq, updated=now))


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: ``uniform(0, min(cap, base * 2**(n-1)))``."""

    base: float = 0.5
    cap: float = 30.0
    jitter: bool = True

    def delay(self, failures: int) -> float:
        ceiling = min(self.cap, self.base * (2 ** max(0, failures - 1)))
        return random.uniform(ceiling / 2, ceiling) if self.jitter else ceiling


@dataclass(frozen=True)
class ShipperStatus:
    name: str
    state: str  # idle | shipping | retrying | stopped
    head_seq: int
    shipped_seq: int
    lag: int  # events committed but not yet in the sink
    failures: int  # consecutive failed attempts
    last_error: str | None
    last_success: datetime | None
    shipped_total: int  # events written by this process (created, not duplicates)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "state": self.state, "head_seq": self.head_seq,
            "shipped_seq": self.shipped_seq, "lag": self.lag, "failures": self.failures,
            "last_error": self.last_error,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "shipped_total": self.shipped_total,
        }


class Shipper:
    """Ships batches from ``spool`` to ``sink``; ``start()`` runs it on a daemon thread."""

    def __init__(self, spool: Spool, sink: Sink, *, name: str = "elasticsearch",
                 batch_size: int = 1000, backoff: Backoff | None = None,
                 poll_interval: float = 1.0) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.spool = spool
        self.sink = sink
        self.name = name
        self.batch_size = batch_size
        self.backoff = backoff or Backoff()
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        self._state = "stopped"
        self._failures = 0
        self._last_error: str | None = None
        self._last_success: datetime | None = None
        self._shipped_total = 0
        self._mark: int | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # --- one step ---------------------------------------------------------------------
    def ship_once(self) -> int:
        """Ship the next batch after the mark; returns how many events it held.

        Raises whatever the spool or the sink raise; the mark then stays where it was,
        so the same batch is sent again next time.
        """
        mark = self.spool.load_mark(self.name) if self._mark is None else self._mark
        events = self.spool.read_after(mark, self.batch_size)
        if not events:
            self._mark = mark
            return 0
        result = self.sink.write(events)
        last = events[-1].seq
        assert last is not None
        self.spool.save_mark(self.name, last)
        with self._lock:
            self._mark = last
            self._shipped_total += int(getattr(result, "created", len(events)))
            self._last_success = datetime.now(UTC)
            self._failures = 0
            self._last_error = None
        return len(events)

    def drain(self, *, timeout: float = 30.0) -> int:
        """Ship until nothing is left (tests, shutdown); raises the last error on timeout."""
        deadline = time.monotonic() + timeout
        shipped = 0
        while True:
            try:
                n = self.ship_once()
            except Exception:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(0.2, self.backoff.base))
                continue
            shipped += n
            if n < self.batch_size:
                return shipped

    # --- the background loop ----------------------------------------------------------
    def _set_state(self, state: str) -> None:
        with self._lock:
            self._state = state

    def run(self) -> None:
        """Loop until ``stop()``: ship, back off on failure, wait when caught up."""
        while not self._stop.is_set():
            self._set_state("shipping" if self._failures == 0 else "retrying")
            try:
                n = self.ship_once()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any failure
                with self._lock:
                    self._failures += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    failures = self._failures
                    self._state = "retrying"
                delay = self.backoff.delay(failures)
                _log.warning("shipping failed (%d in a row), retrying in %.1fs: %s",
                             failures, delay, exc)
                self._stop.wait(delay)
                continue
            if n < self.batch_size:
                self._set_state("idle")
                self._wake.wait(self.poll_interval)
                self._wake.clear()
        self._set_state("stopped")

    def notify(self) -> None:
        """New events were committed: ship now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=f"shipper-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._set_state("stopped")

    def status(self) -> ShipperStatus:
        """Lag and state; reads the head from the spool (a failing spool shows as -1)."""
        try:
            head = self.spool.head_seq()
        except Exception:  # noqa: BLE001 - status must answer while the store is busy
            head = -1
        with self._lock:
            shipped = self._mark
        if shipped is None:
            try:
                shipped = self.spool.load_mark(self.name)
            except Exception:  # noqa: BLE001
                shipped = 0
        with self._lock:
            return ShipperStatus(
                name=self.name, state=self._state, head_seq=head, shipped_seq=shipped,
                lag=max(0, head - shipped) if head >= 0 else -1, failures=self._failures,
                last_error=self._last_error, last_success=self._last_success,
                shipped_total=self._shipped_total)
