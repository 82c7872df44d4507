"""Audit search benchmark (issue 3): search p50/p95 on a large generated trail.

Loads ``--events`` (default 1,000,000; ``--quick`` 100,000) generated events into a
fresh SQLite store through ``AuditStore.append`` (so the rows, hashes and indexes are
the real ones), then runs a mix of queries the console and the API issue — filters,
time ranges, free text, sorts, deep pages, terms aggregations and day/hour
histograms — each several times, through ``SqlSearchBackend``. With
``QUANGUARD_TEST_ES_URL`` set, the same events are bulk-loaded into that cluster and
the same queries timed on ``monitor.es`` as well.

Run from the repository root: ``python bench/audit_search.py [--quick] [--events N]``.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from audit_ingest import ACTIONS, DATASETS, FIELDS, GRADES, ORGS, PURPOSES, ROLES


def generate_events(n: int, end: datetime, seed: int = 5) -> list:  # type: ignore[type-arg]
    from monitor.events import Actor, AuditEvent, EventDecision

    rng = random.Random(seed)
    span = timedelta(days=90)
    step = span / n
    start = end - span
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
                 repeat: int) -> tuple[list[float], dict[str, float]]:
    from monitor.search import SearchQuery

    all_times: list[float] = []
    per: dict[str, float] = {}
    for name, kw in qs:
        q = SearchQuery(**kw)  # type: ignore[arg-type]
        search(q)  # warm
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            search(q)
            times.append(time.perf_counter() - t)
        per[name] = statistics.median(times) * 1000
        all_times += times
    return all_times, per


def p(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100)[pct - 1] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--db", type=Path, default=None,
                    help="keep the generated SQLite trail here and reuse it on the next run")
    args = ap.parse_args()
    n = args.events or (100_000 if args.quick else 1_000_000)

    from sqlalchemy.orm import Session

    from monitor.sql_search import SqlSearchBackend
    from monitor.store import AuditStore, create_schema
    from quanguard.db import make_engine

    end = datetime.now(UTC).replace(microsecond=0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="qg-search-") as tmp:
        path = args.db or Path(tmp) / "trail.db"
        reuse = path.exists()
        engine = make_engine(f"sqlite:///{path}")
        store = AuditStore()
        if reuse:
            import sqlalchemy as sa

            from monitor.store import EVENTS, from_us

            with Session(engine) as s:
                n = store.count(s)
                end = from_us(int(s.execute(sa.select(sa.func.max(EVENTS.c.ts))).scalar_one()))
        else:
            create_schema(engine)
        t0 = time.perf_counter()
        for start in range(0, 0 if reuse else n, 50_000):
            batch = generate_events(min(50_000, n - start), end, seed=start)
            for i in range(0, len(batch), 5000):
                with Session(engine) as s, s.begin():
                    store.append(s, batch[i:i + 5000])
        load_s = time.perf_counter() - t0
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
        sql = SqlSearchBackend(lambda: Session(engine))
        qs = queries(end)
        times, per = time_backend(sql.search, qs, args.repeat)
        rows.append({"metric": f"SQL search p95 over {len(qs)} query shapes, {n:,} events",
                     "ours": round(p(times, 95), 1), "anchor": None, "ratio": None,
                     "goal": None, "unit": "ms", "met": None})
        rows.append({"metric": "SQL search p50", "ours": round(p(times, 50), 1),
                     "anchor": None, "ratio": None, "goal": None, "unit": "ms", "met": None})
        load = "reused trail" if reuse else f"load {n / load_s:,.0f} events/s"
        notes = (f"{n:,} events over 90 days, 2,000 actors, SQLite WAL; {load}; "
                 f"median ms per query: "
                 + "; ".join(f"{k}: {v:.1f}" for k, v in per.items()))
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
                etimes, _ = time_backend(es.search, qs, args.repeat)
                rows.append({"metric": f"Elasticsearch search p95, {n:,} events",
                             "ours": round(p(etimes, 95), 1), "anchor": None, "ratio": None,
                             "goal": None, "unit": "ms", "met": None})
            except Exception as exc:  # noqa: BLE001 - the ES half is optional
                notes += f"; ES part failed: {exc}"
        engine.dispose()
    print("| metric | ours | goal |\n|---|---|---|")
    for r in rows:
        print(f"| {r['metric']} | {r['ours']} {r['unit']} | {r['goal'] or '—'} |")
    print(notes)
    out = ROOT / "bench" / "results" / "audit_search.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"bench": "audit_search", "rows": rows, "notes": notes},
                              ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
