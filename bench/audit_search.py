"""Audit search benchmark (issue 3): search p50/p95 on a large generated trail.

Loads ``--events`` (default 1,000,000; ``--quick`` 100,000) generated events into a
fresh SQLite store through ``AuditStore.append`` (so the rows, hashes and indexes are
the real ones), then runs a mix of queries the console and the API issue — filters,
time ranges, free text, sorts, deep pages, terms aggregations and day/hour
histograms — each several times, through ``SqlSearchBackend``. With
``QUANGUARD_TEST_ES_URL`` set, the same events are bulk-loaded into that cluster and
the same queries timed on ``monitor.es`` as well.

With ``--pg URL`` the same queries are timed on PostgreSQL instead, over a trail of
10,000,000 events built once in the bench-only database ``quanguard_bench_10m`` (schema
from the service's migrations, rows and hashes exactly as ``AuditStore.append`` makes
them, written with ``COPY``; see ``pg_trail``) and kept for the next run. The results
file keeps the last result of each database, so the two are reported side by side.

Run from the repository root: ``python bench/audit_search.py [--quick] [--events N]``
and ``python bench/audit_search.py --pg postgresql://postgres@127.0.0.1:5432/postgres``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from audit_ingest import ACTIONS, DATASETS, FIELDS, GRADES, ORGS, PURPOSES, ROLES

if TYPE_CHECKING:
    from monitor.events import AuditEvent


def generate_events(n: int, end: datetime, seed: int = 5, *, first: int = 0,
                    total: int | None = None) -> list[AuditEvent]:
    """``n`` events spread over the 90 days before ``end``; with ``total``, they are
    events ``first .. first + n - 1`` of a trail of ``total`` events in time order."""
    from monitor.events import Actor, AuditEvent, EventDecision

    rng = random.Random(seed)
    span = timedelta(days=90)
    step = span / (total or n)
    start = end - span + step * first
    allow, deny = EventDecision("allow", "r-allow", "v1"), EventDecision("deny", "r-deny", "v1")
    actors = [Actor(f"user-{i:04d}", ROLES[i % 3], ORGS[i % len(ORGS)]) for i in range(2000)]
    out = []
    for i in range(n):
        out.append(AuditEvent(
            ts=start + step * i, actor=actors[rng.randrange(2000)], action=rng.choice(ACTIONS),
            reporter="bench", dataset=rng.choice(DATASETS), fields=tuple(rng.choice(FIELDS)),
            grade=rng.choice(GRADES), rows=rng.randrange(1, 500),
            purpose=rng.choice(PURPOSES), decision=deny if rng.random() < 0.05 else allow,
        ))
    return out


PG_BENCH_DB = os.environ.get("QUANGUARD_BENCH_PG_DB", "quanguard_bench_10m")
_PG_COLUMNS = ("seq", "id", "ts", "actor", "role", "org", "actor_name", "reporter", "action",
               "dataset", "grade", "effect", "outcome", "rows", "purpose", "reason",
               "source_ip", "body", "leaf_hash", "prev_hash", "hash")


def pg_trail(server: str, n: int, *, rebuild: bool = False) -> tuple[object, datetime, str]:
    """A PostgreSQL trail of ``n`` events in the bench-only database ``PG_BENCH_DB``.

    The schema comes from the service's own migrations; the rows are built exactly as
    ``AuditStore.append`` builds them (canonical body, leaf and chain hashes, head row
    and Merkle frontier), so ``audit verify`` passes on the result. They are written with
    ``COPY`` into the table with its secondary indexes dropped, which are then rebuilt —
    much faster than appending through the API. An existing trail of that size is reused.
    """
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.orm import Session

    from gmcrypto import INTL
    from monitor.chain import GENESIS, chain_hash
    from monitor.merkle import Accumulator, leaf_hash, sha256
    from monitor.store import EVENTS, HEAD, SUITE, from_us, pack, to_us
    from quanguard.db import make_engine, migrate

    base = make_url(server.replace("postgresql://", "postgresql+psycopg://", 1)
                    if server.startswith("postgresql://") else server)
    admin = make_engine(base.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"),
                              {"d": PG_BENCH_DB}).first() is not None
        if exists and rebuild:
            conn.exec_driver_sql(f'DROP DATABASE "{PG_BENCH_DB}" WITH (FORCE)')
            exists = False
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{PG_BENCH_DB}"')
    admin.dispose()
    url = base.set(database=PG_BENCH_DB).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate(engine)
    with Session(engine) as s:
        have = int(s.execute(sa.select(HEAD.c.seq).where(HEAD.c.id == 1)).scalar_one())
        if have:
            if have != n:
                raise SystemExit(f"{PG_BENCH_DB} holds {have:,} events, not {n:,}: "
                                 "run again with --rebuild")
            end = from_us(int(s.execute(sa.select(sa.func.max(EVENTS.c.ts))).scalar_one()))
            return engine, end, "reused trail"
    end = datetime.now(UTC).replace(microsecond=0)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        indexes = [d for (d,) in conn.exec_driver_sql(
            "SELECT indexdef FROM pg_indexes i WHERE tablename = 'audit_events' AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)")]
        constraints = list(conn.exec_driver_sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'audit_events'::regclass AND contype IN ('p', 'u')"))
        for d in indexes:
            conn.exec_driver_sql("DROP INDEX " + d.split(" INDEX ", 1)[1].split(" ON ")[0])
        for name, _ in constraints:
            conn.exec_driver_sql(f"ALTER TABLE audit_events DROP CONSTRAINT {name}")
    acc = Accumulator(0, (), h=sha256)
    prev, seq = GENESIS, 0
    cols = ", ".join(f'"{c}"' for c in _PG_COLUMNS)
    chunk = 50_000
    for first in range(0, n, chunk):
        batch = generate_events(min(chunk, n - first), end, seed=first, first=first, total=n)
        with engine.begin() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            with driver.cursor() as cur, cur.copy(f"COPY audit_events ({cols}) FROM STDIN") as cp:
                for event in batch:
                    seq += 1
                    ev = event.stamped(seq, end)
                    body = ev.canonical_bytes()
                    leaf = leaf_hash(body)
                    h = chain_hash(prev, leaf)
                    acc.append(leaf)
                    c, d = ev.actor, ev.decision
                    cp.write_row((
                        seq, ev.id, to_us(ev.ts), c.id, c.role, c.org, c.name, ev.reporter,
                        ev.action, ev.dataset, ev.grade, d.effect if d else None, ev.outcome,
                        ev.rows, ev.purpose, ev.reason, ev.source_ip, body.decode("utf-8"),
                        leaf, prev, h))
                    prev = h
        if (first // chunk) % 20 == 19:
            rate = seq / (time.perf_counter() - t0)
            print(f"  {seq:,} events copied ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    copy_s = time.perf_counter() - t0
    with engine.begin() as conn:
        conn.execute(sa.update(HEAD).where(HEAD.c.id == 1)
                     .values(seq=seq, hash=prev, frontier=pack(acc.frontier)))
        if conn.execute(sa.select(SUITE.c.id)).first() is None:
            conn.execute(SUITE.insert().values(id=1, suite=INTL.name))
    t1 = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("SET maintenance_work_mem = '512MB'")
        for name, definition in constraints:
            conn.exec_driver_sql(f"ALTER TABLE audit_events ADD CONSTRAINT {name} {definition}")
        for d in indexes:
            conn.exec_driver_sql(d)
        conn.exec_driver_sql("VACUUM (ANALYZE) audit_events")
    note = (f"COPY {n / copy_s:,.0f} events/s, indexes and VACUUM ANALYZE "
            f"{time.perf_counter() - t1:,.0f} s")
    return engine, end, note


def queries(end: datetime) -> list[tuple[str, dict[str, object]]]:
    day = timedelta(days=1)
    return [
        ("latest page", {}),
        ("one actor, newest first", {"actor": "user-0042"}),
        ("actor + last 7 days + by_action", {"actor": "user-0042", "since": end - 7 * day,
                                             "aggs": ("by_action",)}),
        ("denials last day by actor", {"effect": "deny", "since": end - day,
                                       "aggs": ("by_actor",)}),
        ("org + grade L4, seq order", {"org": ORGS[1], "grade": "L4", "sort": "seq"}),
        ("dataset + export, page 20", {"dataset": DATASETS[0], "action": "export", "page": 20}),
        ("free text 'fraud'", {"q": "fraud", "since": end - 7 * day}),
        ("per_day histogram, 30 days", {"since": end - 30 * day, "aggs": ("per_day",),
                                        "size": 0, "tz": "Asia/Shanghai"}),
        ("per_hour histogram, 2 days, denials", {"since": end - 2 * day, "effect": "deny",
                                                 "aggs": ("per_hour",), "size": 0}),
        ("by_effect over everything", {"aggs": ("by_effect",), "size": 0}),
    ]


def time_backend(search: Callable[..., object], qs: list[tuple[str, dict[str, object]]],
                 repeat: int) -> tuple[list[float], dict[str, list[float]]]:
    """All timings (s) and the timings of each query shape, after one warm-up each."""
    from monitor.search import SearchQuery

    all_times: list[float] = []
    per: dict[str, list[float]] = {}
    for name, kw in qs:
        q = SearchQuery(**kw)  # type: ignore[arg-type]
        search(q)  # warm
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            search(q)
            times.append(time.perf_counter() - t)
        per[name] = times
        all_times += times
    return all_times, per


def p(values: list[float], pct: int) -> float:
    """The ``pct`` percentile in ms (inclusive method: defined for a handful of runs)."""
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1] * 1000


def sqlite_run(n: int, db: Path | None, repeat: int) -> dict[str, object]:
    from sqlalchemy.orm import Session

    from monitor.sql_search import SqlSearchBackend
    from monitor.store import AuditStore
    from quanguard.db import make_engine, migrate

    end = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="qg-search-") as tmp:
        path = db or Path(tmp) / "trail.db"
        reuse = path.exists()
        engine = make_engine(f"sqlite:///{path}")
        store = AuditStore()
        if reuse:
            import sqlalchemy as sa

            from monitor.store import EVENTS, from_us

            with Session(engine) as s:
                n = store.count(s)
                end = from_us(int(s.execute(sa.select(sa.func.max(EVENTS.c.ts))).scalar_one()))
        # the service's own schema and search indexes, as on PostgreSQL (``pg_trail``)
        migrate(engine)
        t0 = time.perf_counter()
        for start in range(0, 0 if reuse else n, 50_000):
            batch = generate_events(min(50_000, n - start), end, seed=start, first=start,
                                    total=n)
            for i in range(0, len(batch), 5000):
                with Session(engine) as s, s.begin():
                    store.append(s, batch[i:i + 5000])
        load_s = time.perf_counter() - t0
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
        sql = SqlSearchBackend(lambda: Session(engine))
        times, per = time_backend(sql.search, queries(end), repeat)
        load = ("reused trail" if reuse
                else f"load {n / load_s:,.0f} events/s through AuditStore.append")
        es_url = os.environ.get("QUANGUARD_TEST_ES_URL")
        if es_url:
            try:
                from monitor.es import EsSink, make_client
                from monitor.es_search import EsSearchBackend

                client = make_client(es_url)
                sink = EsSink(client, prefix="qg-bench")
                sink.ensure_template()
                with Session(engine) as s:
                    evs = [store.get(s, i) for i in range(1, n + 1)]
                for i in range(0, len(evs), 5000):
                    sink.write(evs[i:i + 5000])
                client.indices.refresh(index="qg-bench*")
                es = EsSearchBackend(client, prefix="qg-bench")
                etimes, _ = time_backend(es.search, queries(end), repeat)
                load += f"; Elasticsearch p95 {p(etimes, 95):.1f} ms"
            except Exception as exc:  # noqa: BLE001 - the ES half is optional
                load += f"; ES part failed: {exc}"
        engine.dispose()
    return {"backend": "SQLite", "events": n, "load": load, "times": times, "per": per}


def pg_run(server: str, n: int, repeat: int, rebuild: bool) -> dict[str, object]:
    from sqlalchemy.orm import Session

    from monitor.sql_search import SqlSearchBackend

    engine, end, load = pg_trail(server, n, rebuild=rebuild)
    sql = SqlSearchBackend(lambda: Session(engine))  # type: ignore[arg-type]
    times, per = time_backend(sql.search, queries(end), repeat)
    engine.dispose()  # type: ignore[attr-defined]
    return {"backend": "PostgreSQL", "events": n, "load": load, "times": times, "per": per}


def summary(run: dict[str, object]) -> dict[str, object]:
    per: dict[str, list[float]] = run["per"]  # type: ignore[assignment]
    return {"backend": run["backend"], "events": run["events"], "load": run["load"],
            "p95_ms": round(p(run["times"], 95), 1),  # type: ignore[arg-type]
            "p50_ms": round(p(run["times"], 50), 1),  # type: ignore[arg-type]
            "shapes": {k: {"p50_ms": round(p(v, 50), 1), "p95_ms": round(p(v, 95), 1)}
                       for k, v in per.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--db", type=Path, default=None,
                    help="keep the generated SQLite trail here and reuse it on the next run (a "
                         "file this bench made: it is brought to the service's newest schema)")
    ap.add_argument("--pg", metavar="URL", default=None,
                    help="time PostgreSQL instead: a server URL (any database name; the trail "
                         f"lives in the bench-only database {PG_BENCH_DB}, default 10,000,000 "
                         "events, kept and reused); the SQLite result of the last run is kept "
                         "next to it")
    ap.add_argument("--rebuild", action="store_true", help="with --pg: drop and rebuild the trail")
    args = ap.parse_args()
    out = ROOT / "bench" / "results" / "audit_search.json"
    if args.pg:
        n = args.events or (100_000 if args.quick else 10_000_000)
        mine = summary(pg_run(args.pg, n, args.repeat, args.rebuild))
    else:
        n = args.events or (100_000 if args.quick else 1_000_000)
        mine = summary(sqlite_run(n, args.db, args.repeat))
    # The other database's last result stays next to this one (read now: runs are long).
    previous = json.loads(out.read_text()) if out.exists() else {}
    runs: dict[str, dict[str, Any]] = {r["backend"]: r for r in previous.get("runs", [])}
    runs[str(mine["backend"])] = mine
    ordered = [runs[b] for b in ("SQLite", "PostgreSQL") if b in runs]
    rows = []
    for r in ordered:
        rows.append({"metric": f"{r['backend']} search p95 over 10 query shapes, "
                               f"{r['events']:,} events",
                     "ours": r["p95_ms"], "anchor": None, "ratio": None, "goal": None,
                     "unit": "ms", "met": None})
        rows.append({"metric": f"{r['backend']} search p50", "ours": r["p50_ms"],
                     "anchor": None, "ratio": None, "goal": None, "unit": "ms", "met": None})
    print("| metric | ours | goal |\n|---|---|---|")
    for row in rows:
        print(f"| {row['metric']} | {row['ours']} {row['unit']} | {row['goal'] or '—'} |")
    head = " | ".join(f"{r['backend']} {r['events']:,} p50 / p95 ms" for r in ordered)
    print(f"\n| query shape | {head} |\n|---|" + "---|" * len(ordered))
    for name, _ in queries(datetime.now(UTC)):
        cells = " | ".join(
            "{p50_ms} / {p95_ms}".format(**r["shapes"][name]) if name in r["shapes"] else "—"
            for r in ordered)
        print(f"| {name} | {cells} |")
    notes = ("events over 90 days, 2,000 actors; each shape run once to warm, then "
             f"{args.repeat} timed runs; "
             + "; ".join(f"{r['backend']}: {r['events']:,} events, {r['load']}" for r in ordered))
    print(notes)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"bench": "audit_search", "rows": rows, "runs": ordered,
                               "notes": notes}, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
