"""Monitor: trail generations in one database (a hand-over between crypto suites starts
the next generation beside the sealed one).

``audit_head`` gets ``base`` (the seq before the generation's first event; 0 for the
first) and holds one row per generation (``id`` = the generation); ``audit_suite`` already
keys its rows by ``id``; ``audit_checkpoints`` gets ``generation`` (NULL: the first). A
trail created by 0002 after these columns were declared already has them, so each is
added only when it is missing. Existing rows are generation 1 with base 0, which is what
they were.

Revision ID: 0015_audit_generations
Revises: 0001_foundation (its own branch; runs after 0002_monitor and 0008_audit_suite)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_audit_generations"
down_revision = "0001_foundation"
branch_labels = ("audit_generations",)
depends_on = ("0002_monitor", "0008_audit_suite")


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    if "base" not in _columns("audit_head"):
        op.add_column("audit_head", sa.Column("base", sa.BigInteger, nullable=False,
                                              server_default="0"))
    if "generation" not in _columns("audit_checkpoints"):
        op.add_column("audit_checkpoints", sa.Column("generation", sa.Integer))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM audit_head WHERE id > 1")).scalar():
        raise RuntimeError("the trail has more than one generation; cannot downgrade")
    if "generation" in _columns("audit_checkpoints"):
        with op.batch_alter_table("audit_checkpoints") as batch:
            batch.drop_column("generation")
    if "base" in _columns("audit_head"):
        with op.batch_alter_table("audit_head") as batch:
            batch.drop_column("base")
