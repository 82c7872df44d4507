"""Workers: the state several service processes share — console sessions (hashed ids,
CSRF token, expiry) and failed-authentication counters — exactly the tables of
``quanguard.shared_state.METADATA``; and the index that audit search by actor needs on a
large trail (see ``SEARCH_INDEXES``).

Revision ID: 0014_workers
Revises: 0001_foundation (its own branch, "workers"; runs after 0002_monitor, whose
table it indexes)
"""

from __future__ import annotations

from alembic import op

revision = "0014_workers"
down_revision = "0001_foundation"
branch_labels = ("workers",)
depends_on = "0002_monitor"

# A search by actor matches the actor id or, whatever the letters, the key name
# (``actor = :v OR lower(actor_name) = lower(:v)``, monitor.sql_search). Without an index
# on the second half PostgreSQL scans the whole trail: about 5 s at 10,000,000 events
# (bench/audit_search.py --pg), 0.3 s with it; SQLite 1.3 s at 1,000,000 events, under a
# millisecond with it. Events without a name (reporters' users) are left out.
SEARCH_INDEXES = {
    "ix_audit_events_lower_actor_name":
        "ON audit_events (lower(actor_name)) WHERE actor_name IS NOT NULL",
}


def upgrade() -> None:
    from quanguard.shared_state import METADATA

    bind = op.get_bind()
    for table in METADATA.sorted_tables:
        table.create(bind, checkfirst=False)
    if bind.dialect.name in ("postgresql", "sqlite"):
        for name, definition in SEARCH_INDEXES.items():
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} {definition}")


def downgrade() -> None:
    from quanguard.shared_state import METADATA

    bind = op.get_bind()
    if bind.dialect.name in ("postgresql", "sqlite"):
        for name in SEARCH_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    for table in reversed(METADATA.sorted_tables):
        table.drop(bind)
