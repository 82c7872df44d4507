"""Console sessions: server-side, random ids, CSRF tokens; the API key is never kept.

Signing in with an API key creates a :class:`ConsoleSession` held in memory by this
service instance; the browser only gets its random id in an ``HttpOnly``,
``SameSite=Strict`` cookie (``Secure`` over https). Each session carries its own CSRF
token, which every POST form must echo (compared with ``hmac.compare_digest``). Sessions
end on sign-out, after 30 idle minutes, after 8 hours, or as soon as the key behind them
is revoked or expires (checked on every request). A restart signs everybody out.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from quanguard.auth import Principal
from quanguard.models import PrincipalRow

if TYPE_CHECKING:
    from quanguard.container import Container

__all__ = [
    "CONSOLE_ROLES",
    "COOKIE",
    "LOGIN_COOKIE",
    "ConsoleSession",
    "SessionStore",
    "get_store",
    "tokens_match",
]

COOKIE = "qg_console"
LOGIN_COOKIE = "qg_console_login"  # double-submit CSRF token of the sign-in form
CONSOLE_ROLES = frozenset({"auditor", "manager", "admin"})
IDLE_SECONDS = 30 * 60
MAX_SECONDS = 8 * 3600
_MAX_SESSIONS = 10_000


def tokens_match(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


@dataclass
class ConsoleSession:
    principal: Principal
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    created: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)

    def expired(self, now: float) -> bool:
        return now - self.seen > IDLE_SECONDS or now - self.created > MAX_SECONDS


class SessionStore:
    """Session id -> ConsoleSession, for one service instance."""

    def __init__(self) -> None:
        self._sessions: dict[str, ConsoleSession] = {}
        self._lock = threading.Lock()

    def create(self, principal: Principal) -> tuple[str, ConsoleSession]:
        sid = secrets.token_urlsafe(32)
        session = ConsoleSession(principal)
        with self._lock:
            self._sweep(time.monotonic())
            if len(self._sessions) >= _MAX_SESSIONS:  # drop the oldest rather than grow
                oldest = min(self._sessions, key=lambda k: self._sessions[k].seen)
                del self._sessions[oldest]
            self._sessions[sid] = session
        return sid, session

    def get(self, sid: str | None) -> ConsoleSession | None:
        if not sid:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if session.expired(now):
                del self._sessions[sid]
                return None
            session.seen = now
            return session

    def drop(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)

    def drop_principal(self, principal_id: str) -> None:
        with self._lock:
            for sid in [s for s, v in self._sessions.items() if v.principal.id == principal_id]:
                del self._sessions[sid]

    def __len__(self) -> int:
        return len(self._sessions)

    def _sweep(self, now: float) -> None:
        for sid in [s for s, v in self._sessions.items() if v.expired(now)]:
            del self._sessions[sid]


def get_store(container: Container) -> SessionStore:
    with container.lock:
        store = getattr(container, "_console_sessions", None)
        if store is None:
            store = SessionStore()
            container._console_sessions = store
        return store


def key_still_valid(container: Container, principal: Principal) -> bool:
    """False once the key behind a session was revoked, expired or removed."""
    with container.session() as session:
        row = session.execute(
            select(PrincipalRow.revoked_at, PrincipalRow.expires_at)
            .where(PrincipalRow.id == principal.id)).first()
    if row is None or row.revoked_at is not None:
        return False
    expires = row.expires_at
    if expires is not None:
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return bool(expires > datetime.now(UTC))
    return True
