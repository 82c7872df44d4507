"""Exchange: dataset catalog, jobs, privacy budgets and their ledger, consent registry.

Creates exactly the tables declared in ``exchange.tables.METADATA``.

Revision ID: 0006_exchange
Revises: 0001_foundation
"""

from __future__ import annotations

from alembic import op

revision = "0006_exchange"
down_revision = "0001_foundation"
branch_labels = ("exchange",)
depends_on = None


def upgrade() -> None:
    from exchange.tables import METADATA

    METADATA.create_all(op.get_bind(), checkfirst=False)


def downgrade() -> None:
    from exchange.tables import METADATA

    # checkfirst: 0007_exchange_seams (which depends on this) may have dropped its table
    METADATA.drop_all(op.get_bind(), checkfirst=True)
