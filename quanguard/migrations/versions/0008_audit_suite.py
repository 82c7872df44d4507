"""Monitor: the trail's crypto suite (``audit_suite``: suite, sealed, successor).

A database made by 0002 after the suites existed has the table already (0002 creates
every table of ``monitor.store.METADATA``); an older one gets it here. A trail without
the row is an ``intl`` trail (the only suite before).

Revision ID: 0008_audit_suite
Revises: 0001_foundation (its own branch, as every area's; runs after 0002_monitor)
"""

from __future__ import annotations

from alembic import op

revision = "0008_audit_suite"
down_revision = "0001_foundation"
branch_labels = ("audit_suite",)
depends_on = "0002_monitor"


def upgrade() -> None:
    from monitor.store import SUITE

    SUITE.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    from monitor.store import SUITE

    SUITE.drop(op.get_bind(), checkfirst=True)
