"""Audit events keep the actor's key name at the time of the event (``actor_name``) and
the client address as a column (``source_ip``, for filters, facets and CIDR search).

Trails created before this revision get both columns. ``actor_name`` stays NULL for
their events (their bodies, and so their leaf hashes, never held a name);
``source_ip`` is filled from each event's stored body, so that verification (which
compares every column with the body) keeps passing. A trail created by 0002 after these
columns were declared already has them, so each is added only when it is missing.

Revision ID: 0013_audit_actor_name
Revises: 0001_foundation (its own branch, "console"; runs after 0002_monitor, whose table
it changes)
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0013_audit_actor_name"
down_revision = "0001_foundation"
branch_labels = ("console",)
depends_on = "0002_monitor"

_CHUNK = 5000


def _columns() -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns("audit_events")}


def _backfill_source_ip() -> None:
    bind = op.get_bind()
    events = sa.table("audit_events", sa.column("seq", sa.BigInteger),
                      sa.column("body", sa.Text), sa.column("source_ip", sa.Text))
    cursor = 0
    while True:
        rows = bind.execute(sa.select(events.c.seq, events.c.body)
                            .where(events.c.seq > cursor).order_by(events.c.seq)
                            .limit(_CHUNK)).all()
        if not rows:
            return
        updates = []
        for seq, body in rows:
            ip = (json.loads(body).get("source") or {}).get("ip")
            if ip is not None:
                updates.append({"s": seq, "ip": str(ip)})
        if updates:
            bind.execute(events.update().where(events.c.seq == sa.bindparam("s"))
                         .values(source_ip=sa.bindparam("ip")), updates)
        cursor = rows[-1][0]


def upgrade() -> None:
    present = _columns()
    if "actor_name" not in present:
        op.add_column("audit_events", sa.Column("actor_name", sa.String(200)))
    if "source_ip" not in present:
        op.add_column("audit_events", sa.Column("source_ip", sa.Text))
        op.create_index("ix_audit_events_source_ip_ts", "audit_events", ["source_ip", "ts"])
        _backfill_source_ip()


def downgrade() -> None:
    present = _columns()
    with op.batch_alter_table("audit_events") as batch:
        if "source_ip" in present:
            batch.drop_index("ix_audit_events_source_ip_ts")
            batch.drop_column("source_ip")
        if "actor_name" in present:
            batch.drop_column("actor_name")
