"""Scan: the asset inventory (数据资产中心) — scan results per dataset version.

Revision ID: 0003_scan
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_scan"
down_revision = "0001_foundation"
branch_labels = ("scan",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scan_assets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dataset", sa.String(300), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("rows_scanned", sa.Integer(), nullable=False),
        sa.Column("sampled", sa.Boolean(), nullable=False),
        sa.Column("dataset_grade", sa.String(32), nullable=True),
        sa.Column("k_anonymity", sa.Integer(), nullable=True),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("owner_org", sa.String(128), nullable=True),
        sa.Column("scanned_by", sa.String(128), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dataset", "version", name="uq_scan_assets_dataset_version"),
    )
    op.create_index("ix_scan_assets_dataset", "scan_assets", ["dataset"])


def downgrade() -> None:
    op.drop_index("ix_scan_assets_dataset", table_name="scan_assets")
    op.drop_table("scan_assets")
