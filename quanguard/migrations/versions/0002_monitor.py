"""Monitor: the audit trail (events, head row, checkpoints, verify runs, alerts, shipper
high-water marks) — exactly the tables of ``monitor.store.METADATA``.

Revision ID: 0002_monitor
Revises: 0001_foundation
"""

from __future__ import annotations

from alembic import op

revision = "0002_monitor"
down_revision = "0001_foundation"
branch_labels = ("monitor",)
depends_on = None


def upgrade() -> None:
    from monitor.store import METADATA, ensure_head

    bind = op.get_bind()
    for table in METADATA.sorted_tables:
        table.create(bind, checkfirst=False)
    ensure_head(bind)


def downgrade() -> None:
    from monitor.store import METADATA

    bind = op.get_bind()
    for table in reversed(METADATA.sorted_tables):
        table.drop(bind)
