"""Audit search at scale: the indexes the search shapes of a large trail need.

``monitor.sql_search`` turns each case-insensitive filter into the stored values it
matches (``org IN (...)``), so plain column indexes serve it. Two shapes of the console
and the API need a composite index to read one page without sorting the whole match
(bench/audit_search.py --pg, 10,000,000 events):

* ``org`` + ``grade``, in ``seq`` order: ``(org, grade, seq)``;
* ``dataset`` + ``action``, newest first: ``(dataset, action, ts)``.

Both also answer the exact ``total`` of those filters from the index alone.

On PostgreSQL, extended statistics on ``lower(actor_name)`` give the planner the real
selectivity of the actor-name half of an actor filter (the partial index of migration
0014 holds no statistics of its own), so ``actor + since`` uses the actor indexes
instead of scanning the whole time range.

Building an index locks out appends to ``audit_events`` while it runs — about 30 s per
index at 10,000,000 events on two cores. On a large live trail, create them beforehand
with ``CREATE INDEX CONCURRENTLY`` and the same names and definitions
(``SEARCH_INDEXES``); the migration then finds them and does nothing.

Revision ID: 0017_audit_search
Revises: 0001_foundation (its own branch, "audit_search"; runs after 0002_monitor, whose
table it indexes)
"""

from __future__ import annotations

from alembic import op

revision = "0017_audit_search"
down_revision = "0001_foundation"
branch_labels = ("audit_search",)
depends_on = "0002_monitor"

SEARCH_INDEXES = {
    "ix_audit_events_org_grade_seq": "ON audit_events (org, grade, seq)",
    "ix_audit_events_dataset_action_ts": "ON audit_events (dataset, action, ts)",
}
PG_STATISTICS = {
    "st_audit_events_lower_actor_name": "ON (lower(actor_name)) FROM audit_events",
}


def upgrade() -> None:
    bind = op.get_bind()
    for name, definition in SEARCH_INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} {definition}")
    if bind.dialect.name == "postgresql":
        for name, definition in PG_STATISTICS.items():
            op.execute(f"CREATE STATISTICS IF NOT EXISTS {name} {definition}")
        op.execute("ANALYZE audit_events")  # collects them


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name in PG_STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS {name}")
    for name in SEARCH_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
