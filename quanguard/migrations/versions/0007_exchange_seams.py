"""Exchange seams: budget families, declared grades, requests bound to approvals.

Adds to databases created by ``0006_exchange`` before these existed: the columns
``family``, ``declared_grade``, ``subject_sketch`` of ``exchange_datasets``; the columns
``request_digest``, ``request_size``, ``expires_at`` of ``exchange_jobs``; and the table
``exchange_job_requests``. ``0006_exchange`` creates every table of
``exchange.tables.METADATA`` as it is now, so on a new database this revision finds
everything in place and changes nothing.

It is a branch of its own (every area branches from the foundation) that depends on
``0006_exchange``, so it always runs after it.

Revision ID: 0007_exchange_seams
Revises: 0001_foundation
Depends on: 0006_exchange
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_exchange_seams"
down_revision = "0001_foundation"
branch_labels = ("exchange_seams",)
depends_on = "0006_exchange"

_COLUMNS = {
    "exchange_datasets": ("family", "declared_grade", "subject_sketch"),
    "exchange_jobs": ("request_digest", "request_size", "expires_at"),
}


def upgrade() -> None:
    from exchange.tables import METADATA, job_requests

    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table_name, names in _COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table_name)}
        table = METADATA.tables[table_name]
        for name in names:
            if name not in have:
                col = table.c[name]
                op.add_column(table_name, sa.Column(name, col.type, nullable=True))
    job_requests.create(bind, checkfirst=True)


def downgrade() -> None:
    from exchange.tables import job_requests

    job_requests.drop(op.get_bind(), checkfirst=True)
    for table_name, names in _COLUMNS.items():
        with op.batch_alter_table(table_name) as batch:
            for name in names:
                batch.drop_column(name)
