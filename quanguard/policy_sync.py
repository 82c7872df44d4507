"""Keeping every worker process on the same policy version (PostgreSQL ``LISTEN/NOTIFY``).

Each process holds its own :class:`~quanguard.services.policy.PolicyService`. Files changed on
disk are noticed by each process on its own (``(name, mtime, size)`` probe, once a
second); a reload that probe cannot see — ``POST /v1/policy/reload`` or ``quanguard
policy reload`` after an edit that kept a file's size and time, or a reload on another
machine of the service — used to change one process only. Now:

- every successful reload in a process on PostgreSQL *announces* its version: it
  writes ``policy_version`` in ``service_state`` and sends ``NOTIFY`` on the
  service's channel, in one transaction;
- every served process *listens* on that channel (a thread with a connection of its
  own, started with the app) and, when a version other than its own is announced by
  another process, reloads its files (trigger ``peer``; audited as the service's own
  ``policy_reload`` event, like automatic reloads). When its files give another version
  (the workers do not read the same files), it logs a warning and keeps what validated.
- on (re)connecting, the listener reads ``policy_version`` and catches up, so an
  announcement made while its connection was down is not missed.

The channel is named after the database and schema, so two services on one server do
not hear each other. On SQLite (one worker) nothing changes: each process follows its
files as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import select
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from quanguard.models import ServiceState

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from quanguard.container import Container
    from quanguard.services.policy import PolicyService, ReloadResult

__all__ = ["STATE_KEY", "PolicySync", "policy_sync", "start_listening", "stop_listening"]

STATE_KEY = "policy_version"
_log = logging.getLogger("quanguard.policy")
_KEEPALIVE_S = 30.0
_RETRY_S = (0.5, 1, 2, 5, 10)


class PolicySync:
    """Announces this process's reloads and follows the others' (PostgreSQL only)."""

    def __init__(self, container: Container, service: PolicyService) -> None:
        self._container = container
        self._service = service
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._channel: str | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()  # set while the listener is subscribed
        self.followed = 0  # reloads made because another process announced a version

    # -- announcing ----------------------------------------------------------------------

    def channel(self, conn: Session | sa.Connection) -> str:
        if self._channel is None:
            db, schema = conn.execute(sa.text("SELECT current_database(), current_schema()")).one()
            digest = hashlib.sha256(f"{db}.{schema}".encode()).hexdigest()[:16]
            self._channel = f"quanguard_policy_{digest}"
        return self._channel

    def announce(self, result: ReloadResult) -> None:
        """After a successful reload here (not one that followed a peer): record the
        version and notify the other processes, in one transaction."""
        if not result.ok or result.trigger == "peer":
            return
        payload = json.dumps({"version": result.version, "by": self.instance,
                              "at": time.time()})
        with self._container.unit_of_work() as session:
            row = session.get(ServiceState, STATE_KEY)
            if row is None:
                session.add(ServiceState(key=STATE_KEY, value=payload))
            else:
                row.value = payload
            session.flush()
            session.execute(sa.select(sa.func.pg_notify(self.channel(session), payload)))

    # -- following -----------------------------------------------------------------------

    def follow(self, version: str, origin: str | None) -> None:
        """Reload when another process announced a version other than ours."""
        if origin == self.instance or not version or self._service.version == version:
            return
        result = self._service.reload(trigger="peer")
        self.followed += 1
        if result.ok and result.version != version:
            _log.warning("policy version %s was announced by %s, but this process's files give "
                         "%s: do the workers read the same policy directory?", version[:12],
                         origin, result.version[:12])

    def _announced(self, conn: Any) -> None:
        row = conn.execute("SELECT value FROM service_state WHERE key = %s", (STATE_KEY,)).fetchone()
        if row is not None:
            self._handle(row[0])

    def _handle(self, payload: str) -> None:
        try:
            doc = json.loads(payload)
            version, origin = str(doc["version"]), doc.get("by")
        except (ValueError, KeyError, TypeError):
            _log.warning("ignoring a malformed policy announcement: %.200s", payload)
            return
        try:
            self.follow(version, origin)
        except Exception:  # noqa: BLE001 - the listener must outlive one bad reload
            _log.exception("following policy version %s failed", version[:12])

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="policy-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                self._listen()
                attempt = 0
            except Exception as exc:  # noqa: BLE001 - reconnect: the database may be back soon
                self.connected.clear()
                if self._stop.is_set():
                    return
                delay = _RETRY_S[min(attempt, len(_RETRY_S) - 1)]
                attempt += 1
                _log.warning("policy listener lost its connection (%s); retrying in %ss",
                             exc, delay)
                self._stop.wait(delay)

    def _listen(self) -> None:
        raw = self._container.engine.raw_connection()
        conn: Any = raw.driver_connection  # psycopg's own connection (LISTEN)
        raw.detach()  # a connection of its own for as long as the process listens
        try:
            conn.autocommit = True
            pending: list[str] = []
            conn.add_notify_handler(lambda n: pending.append(n.payload))
            with self._container.engine.connect() as probe:
                channel = self.channel(probe)
            conn.execute(f'LISTEN "{channel}"')
            self.connected.set()
            self._announced(conn)  # catch up with what was announced while not listening
            while not self._stop.is_set():
                ready, _, _ = select.select([conn.fileno(), self._wake_r], [], [], _KEEPALIVE_S)
                if self._wake_r in ready:
                    return
                conn.execute("SELECT 1")  # reads the pending notifications (and probes)
                while pending:
                    self._handle(pending.pop(0))
        finally:
            self.connected.clear()
            conn.close()


def policy_sync(container: Container, service: PolicyService) -> PolicySync | None:
    """Announce this container's reloads (PostgreSQL only; None on SQLite)."""
    if container.engine.dialect.name != "postgresql":
        return None
    sync = PolicySync(container, service)
    service.on_reload(sync.announce)
    container._policy_sync = sync
    container.on_close(sync.stop)
    return sync


def start_listening(container: Container) -> None:
    """Follow the other processes' reloads while this process serves (app start-up)."""
    if container.engine.dialect.name != "postgresql":
        return
    container.policy  # noqa: B018 - builds the service and its PolicySync
    sync: PolicySync | None = getattr(container, "_policy_sync", None)
    if sync is not None:
        sync.start()


def stop_listening(container: Container) -> None:
    sync: PolicySync | None = container.__dict__.get("_policy_sync")
    if sync is not None:
        sync.stop()
