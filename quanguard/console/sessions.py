"""Console sessions: server-side, random ids, CSRF tokens; the API key is never kept.

Signing in with an API key creates a :class:`ConsoleSession`, a row of
``console_sessions`` in the service's database (``quanguard.shared_state``), so every
worker process of the service knows it. The browser only gets the session's random id
in an ``HttpOnly``, ``SameSite=Strict`` cookie (``Secure`` over https); the database
keeps only its SHA-256, so a copy of the database signs nobody in. Each session carries
its own CSRF token, which every POST form must echo (compared with
``hmac.compare_digest``). Sessions end on sign-out (the row is deleted: every worker
refuses the cookie from then on), after 30 idle minutes, after 8 hours, or as soon as
the key behind them is revoked or expires (checked on every request, in the same read
as the session), or as soon as the active policy no longer admits the key's role to the
console (asked again on every request, ``quanguard.usecases.console.still_admitted``).
Restarting the service keeps sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from quanguard.auth import Principal
from quanguard.models import PrincipalRow
from quanguard.shared_state import CONSOLE_SESSIONS

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from quanguard.container import Container

__all__ = [
    "COOKIE",
    "LOGIN_COOKIE",
    "ConsoleSession",
    "SessionStore",
    "get_store",
    "tokens_match",
]

COOKIE = "qg_console"
LOGIN_COOKIE = "qg_console_login"  # double-submit CSRF token of the sign-in form
IDLE_SECONDS = 30 * 60
MAX_SECONDS = 8 * 3600
TOUCH_SECONDS = 60  # last-seen is written at most once a minute per session
_MAX_SID = 200


def tokens_match(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def _hash(sid: str) -> str:
    # surrogatepass: a cookie that is no valid text still hashes (to no issued id)
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


def _ms(now: float) -> int:
    return int(now * 1000)


@dataclass
class ConsoleSession:
    principal: Principal
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    created: float = field(default_factory=time.time)  # seconds since the epoch
    seen: float = field(default_factory=time.time)

    def expired(self, now: float) -> bool:
        return now - self.seen > IDLE_SECONDS or now - self.created > MAX_SECONDS


def _key_valid(revoked_at: datetime | None, expires_at: datetime | None) -> bool:
    if revoked_at is not None:
        return False
    if expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)  # SQLite returns naive datetimes
        return bool(expires_at > datetime.now(UTC))
    return True


_P = PrincipalRow.__table__
_S = CONSOLE_SESSIONS
_LOOKUP = (
    sa.select(_S.c.principal_id, _S.c.csrf, _S.c.created, _S.c.seen, _P.c.name, _P.c.role,
              _P.c.org, _P.c.revoked_at, _P.c.expires_at)
    .select_from(_S.outerjoin(_P, _P.c.id == _S.c.principal_id))
    .where(_S.c.id_hash == sa.bindparam("h"))
)


class SessionStore:
    """Session id -> ConsoleSession, in the service's database (shared by its workers)."""

    def __init__(self, container: Container, clock: Callable[[], float] = time.time) -> None:
        self._container = container
        self._clock = clock

    def create(self, principal: Principal) -> tuple[str, ConsoleSession]:
        sid = secrets.token_urlsafe(32)
        now = self._clock()
        session = ConsoleSession(principal, created=now, seen=now)
        with self._container.unit_of_work() as s:
            self._sweep(s, now)
            s.execute(_S.insert().values(id_hash=_hash(sid), principal_id=principal.id,
                                         csrf=session.csrf, created=_ms(now), seen=_ms(now)))
        return sid, session

    def get(self, sid: str | None) -> ConsoleSession | None:
        """The live session of ``sid``; None when unknown, signed out, expired, or its key
        was revoked or expired (the session is then removed)."""
        if not sid or len(sid) > _MAX_SID:
            return None
        h = _hash(sid)
        now = self._clock()
        with self._container.read_session() as s:
            row = s.execute(_LOOKUP, {"h": h}).first()
        if row is None:
            return None
        session = ConsoleSession(
            Principal(id=row.principal_id, name=row.name or "", role=row.role or "",
                      org=row.org or ""),
            csrf=row.csrf, created=row.created / 1000, seen=row.seen / 1000)
        if row.role is None or not _key_valid(row.revoked_at, row.expires_at):
            self.drop_principal(row.principal_id)
            return None
        if session.expired(now):
            self.drop(sid)
            return None
        if now - session.seen > TOUCH_SECONDS:
            with self._container.unit_of_work() as s:
                s.execute(_S.update().where(_S.c.id_hash == h).values(seen=_ms(now)))
            session.seen = now
        return session

    def drop(self, sid: str | None) -> None:
        if not sid:
            return
        with self._container.unit_of_work() as s:
            s.execute(_S.delete().where(_S.c.id_hash == _hash(sid)))

    def drop_principal(self, principal_id: str) -> None:
        with self._container.unit_of_work() as s:
            s.execute(_S.delete().where(_S.c.principal_id == principal_id))

    def __len__(self) -> int:
        now = self._clock()
        with self._container.read_session() as s:
            return int(s.execute(sa.select(sa.func.count()).select_from(_S).where(
                _S.c.seen >= _ms(now - IDLE_SECONDS),
                _S.c.created >= _ms(now - MAX_SECONDS))).scalar_one())

    @staticmethod
    def _sweep(s: Session, now: float) -> None:
        s.execute(_S.delete().where(sa.or_(_S.c.seen < _ms(now - IDLE_SECONDS),
                                           _S.c.created < _ms(now - MAX_SECONDS))))


def get_store(container: Container) -> SessionStore:
    return container.shared("_console_sessions", lambda: SessionStore(container))

