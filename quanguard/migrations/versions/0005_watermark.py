"""Watermark: the registry of issued copies — exactly the tables of
``watermark.registry.METADATA``.

Revision ID: 0005_watermark
Revises: 0001_foundation
"""

from __future__ import annotations

from alembic import op

revision = "0005_watermark"
down_revision = "0001_foundation"
branch_labels = ("watermark",)
depends_on = None


def upgrade() -> None:
    from watermark.registry import METADATA

    bind = op.get_bind()
    for table in METADATA.sorted_tables:
        table.create(bind, checkfirst=False)


def downgrade() -> None:
    from watermark.registry import METADATA

    bind = op.get_bind()
    for table in reversed(METADATA.sorted_tables):
        table.drop(bind)
