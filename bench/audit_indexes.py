"""What each index of the audit trail costs an ingest (issue 15).

The rows ``quanguard audit ingest`` stores for ``audit_ingest.iter_lines`` (parsed,
redacted and hashed by the real code, once, before anything is timed) are inserted with a
plain ``sqlite3`` ``executemany`` — 10,000 rows a transaction, WAL, synchronous=NORMAL,
as the anchor of ``audit_ingest.py`` — into a table without any index, into that table
plus one index at a time (the index's marginal cost), into the table of the trail before
issue 15 (every index of the migrations up to 0017) and into the trail's table as the
migrations make it now. Figures are CPU seconds of this process (the machine is shared)
and microseconds per event; each configuration runs ``--repeat`` times, the best counts.

Run from the repository root: ``python bench/audit_indexes.py [--quick] [--events N]``;
the figures go to ``bench/results/audit_indexes.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from audit_ingest import iter_lines

# The trail's b-trees before issue 15 (monitor.store up to then and migrations 0014, 0017).
OLD_INDEXES = {
    "pk(seq) BIGINT (not the rowid)": "",
    "unique(id)": "CREATE UNIQUE INDEX ux_id ON audit_events (id)",
    "ts": "CREATE INDEX ix_ts ON audit_events (ts)",
    "actor, ts": "CREATE INDEX ix_actor_ts ON audit_events (actor, ts)",
    "action, ts": "CREATE INDEX ix_action_ts ON audit_events (action, ts)",
    "effect, ts": "CREATE INDEX ix_effect_ts ON audit_events (effect, ts)",
    "org, ts": "CREATE INDEX ix_org_ts ON audit_events (org, ts)",
    "role, ts": "CREATE INDEX ix_role_ts ON audit_events (role, ts)",
    "dataset, ts": "CREATE INDEX ix_dataset_ts ON audit_events (dataset, ts)",
    "grade, ts": "CREATE INDEX ix_grade_ts ON audit_events (grade, ts)",
    "actor, dataset": "CREATE INDEX ix_actor_dataset ON audit_events (actor, dataset)",
    "source_ip, ts": "CREATE INDEX ix_source_ip_ts ON audit_events (source_ip, ts)",
    "lower(actor_name) partial (0014)": (
        "CREATE INDEX ix_lan ON audit_events (lower(actor_name)) WHERE actor_name IS NOT NULL"),
    "org, grade, seq (0017)": "CREATE INDEX ix_ogs ON audit_events (org, grade, seq)",
    "dataset, action, ts (0017)": "CREATE INDEX ix_dat ON audit_events (dataset, action, ts)",
}


def stored_rows(n: int, workdir: Path) -> tuple[list[str], list[tuple[object, ...]], list[str]]:
    """The columns, the rows the trail stores for ``n`` bench lines, and the DDL of the
    trail's table as the service's migrations make it now."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from monitor.ingest import parse_batch
    from monitor.store import EVENTS, AuditStore
    from quanguard.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{workdir / 'src.db'}")
    migrate(engine)
    store = AuditStore()
    now = datetime.now(UTC)
    lines = list(iter_lines(n))
    for i in range(0, n, 10_000):
        events = list(parse_batch(lines[i:i + 10_000], reporter="bench", now=now,
                                  max_lines=None).events)
        with Session(engine) as s, s.begin():
            store.append(s, events)
    cols = [c.name for c in EVENTS.columns]
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.select(*EVENTS.columns).order_by(EVENTS.c.seq))]
        ddl = [str(r[0]) for r in conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'audit_events' AND sql IS NOT NULL "
            "ORDER BY type DESC")]  # the table first
    engine.dispose()
    return cols, rows, ddl


def insert_cpu(path: Path, statements: list[str], cols: list[str],
               rows: list[tuple[object, ...]]) -> float:
    if path.exists():
        path.unlink()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for st in statements:
        db.execute(st)
    sql = f"INSERT INTO audit_events ({', '.join(cols)}) VALUES ({','.join('?' * len(cols))})"
    c0 = time.process_time()
    for i in range(0, len(rows), 10_000):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(sql, rows[i:i + 10_000])
        db.execute("COMMIT")
    cpu = time.process_time() - c0
    db.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 events, the three tables only")
    ap.add_argument("--events", type=int, default=None, help="events (default 100,000)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--only", choices=("all", "sets"), default="all",
                    help="sets: only the no-index, old and current tables (no per-index rows)")
    args = ap.parse_args()
    n = args.events or (20_000 if args.quick else 100_000)
    only = "sets" if args.quick else args.only
    with tempfile.TemporaryDirectory(prefix="qg-idx-") as tmp:
        work = Path(tmp)
        cols, rows, ddl = stored_rows(n, work)
        bare = f"CREATE TABLE audit_events ({', '.join(cols)})"
        old_pk = bare[:-1] + ", PRIMARY KEY (seq))"
        configs: list[tuple[str, list[str]]] = [("no index", [bare])]
        if only == "all":
            for name, st in OLD_INDEXES.items():
                configs.append((f"+ {name}", [old_pk] if not st else [bare, st]))
            configs.append(("+ pk(seq) INTEGER (the rowid)",
                            [f"CREATE TABLE audit_events ({', '.join(cols)}, "
                             "PRIMARY KEY (seq))".replace("seq,", "seq INTEGER,", 1)]))
        old_name, new_name = "the trail's table before issue 15", "the trail's table now"
        configs.append((old_name, [old_pk, *[s for s in OLD_INDEXES.values() if s]]))
        configs.append((new_name, ddl))
        load0 = os.getloadavg()[0]
        per: dict[str, float] = {}
        print(f"{n:,} events, best of {args.repeat}; CPU s, us/event, extra us/event over no index")
        for name, statements in configs:
            cpu = min(insert_cpu(work / "t.db", statements, cols, rows)
                      for _ in range(args.repeat))
            per[name] = cpu / n * 1e6
            print(f"| {name} | {cpu:.2f} s | {per[name]:.1f} | {per[name] - per['no index']:+.1f} |",
                  flush=True)
        load1 = os.getloadavg()[0]
        print(f"load average {load0:.1f} -> {load1:.1f}")
        print("current DDL:\n  " + "\n  ".join(ddl))
    base = per["no index"]
    out_rows: list[dict[str, object]] = [
        {"metric": f"plain sqlite3 executemany of {n:,} stored events into {new_name} (ours) vs "
                   f"into {old_name} (anchor), CPU per event", "ours": round(per[new_name], 1),
         "anchor": round(per[old_name], 1), "ratio": round(per[new_name] / per[old_name], 3),
         "goal": None, "unit": "us/event", "met": None},
        {"metric": "the same into a table without indexes", "ours": round(base, 1),
         "anchor": None, "ratio": None, "goal": None, "unit": "us/event", "met": None},
    ]
    out_rows += [{"metric": f"extra CPU per event of one index: {name[2:]}",
                  "ours": round(v - base, 1), "anchor": None, "ratio": None, "goal": None,
                  "unit": "us/event", "met": None}
                 for name, v in per.items() if name.startswith("+ ")]
    notes = (f"{n:,} events as `quanguard audit ingest` stores them (audit_ingest.iter_lines), "
             f"10,000 a transaction, WAL, synchronous=NORMAL, best of {args.repeat} by CPU time; "
             f"load average {load0:.1f} -> {load1:.1f} (shared machine: per-index figures "
             "within about 1.5 us/event of each other are noise)")
    out = ROOT / "bench" / "results" / "audit_indexes.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"bench": "audit_indexes", "rows": out_rows, "notes": notes},
                              ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
