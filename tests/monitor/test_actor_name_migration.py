"""Migration 0013 on a trail recorded before it: the new columns appear, ``source_ip`` is
filled from each stored body, and the trail still verifies (columns equal the bodies)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa

from monitor.search import SearchQuery
from quanguard.container import Container, build_container
from tests.conftest import make_settings
from tests.es_fixture import make_events


def test_old_trail_upgrades_and_verifies(tmp_path: Path) -> None:
    from quanguard.db import migrate

    container: Container = build_container(make_settings(tmp_path))
    try:
        events = [replace(e, seq=None, ingested=None, actor=replace(e.actor, name=None))
                  for e in make_events(60, seed=4)]
        with container.session() as s, s.begin():
            container.audit.record_batch(s, events)
        # Make it look like a trail from before 0013: no new columns, no revision row.
        with container.engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_audit_events_source_ip_ts")
            conn.exec_driver_sql("DROP INDEX IF EXISTS ix_audit_events_lower_actor_name")  # 0014's
            conn.exec_driver_sql("ALTER TABLE audit_events DROP COLUMN source_ip")
            conn.exec_driver_sql("ALTER TABLE audit_events DROP COLUMN actor_name")
            # (0013 depends on 0002, so alembic keeps only 0013's row: put 0002's back —
            # unless another revision that depends on 0002, 0008 or 0015, still stands for it.)
            conn.exec_driver_sql("DELETE FROM alembic_version "
                                 "WHERE version_num = '0013_audit_actor_name'")
            if conn.exec_driver_sql("SELECT 1 FROM alembic_version WHERE version_num IN "
                                    "('0008_audit_suite', '0015_audit_generations')"
                                    ).first() is None:
                conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('0002_monitor')")
        migrate(container.engine)
        columns = {c["name"] for c in sa.inspect(container.engine).get_columns("audit_events")}
        assert {"source_ip", "actor_name"} <= columns
        with container.engine.connect() as conn:
            ips: dict[int, str | None] = dict(conn.exec_driver_sql("SELECT seq, source_ip FROM audit_events").all())
        stored = {e.seq: e.source_ip for e in container.search.search(SearchQuery(size=100)).hits}
        assert ips == stored and any(v is not None for v in ips.values())
        with container.session() as s:
            container.audit.trail.verify(s)  # raises Tampered if a column disagrees
    finally:
        container.close()
