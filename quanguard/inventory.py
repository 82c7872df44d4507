"""The asset inventory's table (数据资产中心): one row per scanned dataset version.

Declared here, away from the scan service, so that migration 0003 builds exactly this
table without importing the scanners (as the domain packages' migrations build theirs
from ``METADATA``). Read and written by :mod:`quanguard.services.scan`.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["ASSETS", "METADATA"]

METADATA = sa.MetaData()

ASSETS = sa.Table(
    "scan_assets",
    METADATA,
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
    sa.Index("ix_scan_assets_dataset", "dataset"),
)
