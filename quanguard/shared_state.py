"""State that every worker process of one service shares, kept in the database.

``quanguard serve --workers N`` runs N processes; whatever one of them must know about
what another did lives here (created by migration 0014):

- ``console_sessions``: signed-in console sessions. The row is keyed by the SHA-256 of
  the session id (the cookie's value is never stored), and carries the principal, the
  session's CSRF token and its creation and last-seen times (ms since the epoch).
- ``auth_failures``: failed authentications per source address in 10-second buckets;
  the limit is checked against the sum of the buckets of the last minute (see
  ``quanguard.ratelimit``).

The active policy version is announced in ``service_state`` under ``policy_version``
(see ``quanguard.policy_sync``).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["AUTH_FAILURES", "CONSOLE_SESSIONS", "METADATA"]

METADATA = sa.MetaData()

CONSOLE_SESSIONS = sa.Table(
    "console_sessions",
    METADATA,
    sa.Column("id_hash", sa.String(64), primary_key=True),  # SHA-256 hex of the session id
    sa.Column("principal_id", sa.String(64), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),  # ms since the epoch
    sa.Column("seen", sa.BigInteger, nullable=False),  # ms since the epoch
    sa.Index("ix_console_sessions_principal", "principal_id"),
    sa.Index("ix_console_sessions_seen", "seen"),
)

AUTH_FAILURES = sa.Table(
    "auth_failures",
    METADATA,
    sa.Column("source", sa.String(64), primary_key=True),  # client address
    sa.Column("bucket", sa.BigInteger, primary_key=True),  # epoch seconds // bucket width
    sa.Column("count", sa.Integer, nullable=False),
    sa.Index("ix_auth_failures_bucket", "bucket"),
)
