"""Scan: the asset inventory (数据资产中心) — scan results per dataset version; exactly the
tables of ``quanguard.inventory.METADATA``.

Revision ID: 0003_scan
Revises: 0001_foundation
"""

from __future__ import annotations

from alembic import op

revision = "0003_scan"
down_revision = "0001_foundation"
branch_labels = ("scan",)
depends_on = None


def upgrade() -> None:
    from quanguard.inventory import METADATA

    METADATA.create_all(op.get_bind(), checkfirst=False)


def downgrade() -> None:
    from quanguard.inventory import METADATA

    METADATA.drop_all(op.get_bind(), checkfirst=False)
