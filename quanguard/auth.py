"""Principals and API keys.

A key looks like ``qg_<prefix>_<secret>``: 8 random hex characters to find the row, 43
URL-safe characters (256 bits) of secret. It is shown once; the database keeps its SHA-256
and the comparison is constant-time (``hmac.compare_digest``). Stores take a session and
never commit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gmcrypto import INTL, Suite, suite_for_hash
from quanguard.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from quanguard.models import PrincipalRow

__all__ = [
    "KEY_ROLES",
    "LOCAL_OPERATOR",
    "ROLES",
    "IssuedKey",
    "KeyInfo",
    "Principal",
    "anonymous",
    "authenticate",
    "create_key",
    "key_fingerprint",
    "list_keys",
    "revoke_key",
]

ROLES: tuple[str, ...] = (
    "admin", "officer", "manager", "auditor", "provider", "consumer", "reporter", "operator",
)
# ``operator`` is the person at the machine running a local command without a key (the
# CLI's local operator); no API key can carry it, so it never reaches the HTTP API.
KEY_ROLES: tuple[str, ...] = tuple(r for r in ROLES if r != "operator")
_PREFIX = "qg_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the holder of a key (or the local operator of the CLI)."""

    id: str
    name: str
    role: str
    org: str


# A principal like any other: what it may do is written in policies/roles.yaml (role
# ``operator``), and no code path treats it specially.
LOCAL_OPERATOR = Principal(id="local-operator", name="local-operator", role="operator", org="本机")


def anonymous() -> Principal:
    """The actor of an attempt without a valid key (its fingerprint goes in the labels)."""
    return Principal(id="anonymous", name="anonymous", role="anonymous", org="-")


def key_fingerprint(key: str) -> str:
    """A short SHA-256 prefix of a presented key: enough to tell attempts apart and to
    match a stored key's hash, never the key."""
    return _digest(key)[:12]


@dataclass(frozen=True)
class IssuedKey:
    principal: Principal
    key: str


@dataclass(frozen=True)
class KeyInfo:
    principal: Principal
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            return "expired"
        return "active"


def _digest(key: str, suite: Suite = INTL) -> str:
    """The stored hash of a key: SHA-256 hex (intl, and every key made before the suites)
    or ``sm3:`` + SM3 hex under gm. A record names its algorithm by that prefix, so keys
    made under either suite keep verifying after a switch."""
    data = key.encode("utf-8")
    if suite.hash_alg == "sha256":
        return hashlib.sha256(data).hexdigest()
    return f"{suite.hash_alg}:{suite.hexdigest(data)}"


def _stored_suite(key_hash: str) -> Suite:
    alg, sep, _rest = key_hash.partition(":")
    return suite_for_hash(alg) if sep else INTL


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # SQLite returns naive datetimes
    return value


def _principal(row: PrincipalRow) -> Principal:
    return Principal(id=row.id, name=row.name, role=row.role, org=row.org)


def create_key(
    session: Session,
    *,
    role: str,
    org: str,
    name: str,
    expires_at: datetime | None = None,
    created_by: str | None = None,
    suite: Suite = INTL,
) -> IssuedKey:
    """Create a principal with a fresh key, its hash under ``suite``. Raises InvalidInput,
    Conflict."""
    if role not in KEY_ROLES:
        if role in ROLES:
            raise InvalidInput(f"role {role!r} is the local command line's; no key can carry it",
                               field="role")
        raise InvalidInput(f"unknown role {role!r} (known: {' '.join(KEY_ROLES)})", field="role")
    org, name = org.strip(), name.strip()
    if not org:
        raise InvalidInput("org must not be empty (e.g. 市人社局)", field="org")
    if not name or len(name) > 128:
        raise InvalidInput("name must be 1 to 128 characters", field="name")
    if len(org) > 128:
        raise InvalidInput("org must be at most 128 characters", field="org")
    if session.scalar(select(PrincipalRow.id).where(PrincipalRow.name == name)) is not None:
        raise Conflict(f"a key named {name!r} exists already; choose another name", field="name")
    prefix = secrets.token_hex(4)
    key = f"{_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = PrincipalRow(
        id=uuid.uuid4().hex,
        name=name,
        role=role,
        org=org,
        key_prefix=prefix,
        key_hash=_digest(key, suite),
        created_at=datetime.now(UTC),
        expires_at=expires_at,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return IssuedKey(_principal(row), key)


def authenticate(session: Session, key: str | None) -> Principal:
    """Return the key's principal; Unauthenticated for a missing, bad, revoked or expired key.

    The message never repeats the key.
    """
    if not key:
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
    parts = key.split("_")
    if len(parts) < 3 or not key.startswith(_PREFIX) or len(key) > 200:
        raise Unauthenticated("invalid API key")
    prefix = parts[1]
    digest = _digest(key)
    rows = session.scalars(select(PrincipalRow).where(PrincipalRow.key_prefix == prefix)).all()
    match = None
    for row in rows:
        suite = _stored_suite(row.key_hash)
        if hmac.compare_digest(row.key_hash, digest if suite is INTL else _digest(key, suite)):
            match = row
    if match is None:
        # Same work on the miss path: compare against a dummy digest.
        hmac.compare_digest(digest, _digest("dummy"))
        raise Unauthenticated("invalid API key")
    if match.revoked_at is not None:
        raise Unauthenticated("this API key has been revoked")
    expires = _aware(match.expires_at)
    if expires is not None and expires <= datetime.now(UTC):
        raise Unauthenticated("this API key has expired")
    return _principal(match)


def list_keys(session: Session) -> list[KeyInfo]:
    rows = session.scalars(select(PrincipalRow).order_by(PrincipalRow.created_at)).all()
    return [
        KeyInfo(
            principal=_principal(r),
            prefix=r.key_prefix,
            created_at=_aware(r.created_at) or datetime.now(UTC),
            expires_at=_aware(r.expires_at),
            revoked_at=_aware(r.revoked_at),
        )
        for r in rows
    ]


def revoke_key(session: Session, name: str) -> Principal:
    """Revoke the key named ``name``. Raises NotFound; revoking twice is a Conflict."""
    row = session.scalar(select(PrincipalRow).where(PrincipalRow.name == name))
    if row is None:
        raise NotFound(f"no key named {name!r} (see 'quanguard keys list')")
    if row.revoked_at is not None:
        raise Conflict(f"key {name!r} is already revoked")
    row.revoked_at = datetime.now(UTC)
    session.flush()
    return _principal(row)
