"""Workers: the state several service processes share — console sessions (hashed ids,
CSRF token, expiry) and failed-authentication counters — exactly the tables of
``quanguard.shared_state.METADATA``.

Revision ID: 0014_workers
Revises: 0001_foundation
"""

from __future__ import annotations

from alembic import op

revision = "0014_workers"
down_revision = "0001_foundation"
branch_labels = ("workers",)
depends_on = None


def upgrade() -> None:
    from quanguard.shared_state import METADATA

    bind = op.get_bind()
    for table in METADATA.sorted_tables:
        table.create(bind, checkfirst=False)


def downgrade() -> None:
    from quanguard.shared_state import METADATA

    bind = op.get_bind()
    for table in reversed(METADATA.sorted_tables):
        table.drop(bind)
