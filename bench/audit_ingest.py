"""Audit ingest benchmark (issue 3).

1. Batch ingest: ``AuditStore.append`` (canonical JSON, RFC 6962 leaf hash, hash chain,
   Merkle frontier, one executemany, commit per batch) vs a plain ``sqlite3``
   ``executemany`` of the very same rows into an identical table (same indexes, WAL,
   same batch size, commit per batch). Goal: ratio >= 0.35.
2. Single-event ``POST /v1/events`` latency p50/p99 under 32 concurrent clients against
   ``quanguard serve`` (uvicorn subprocess, SQLite, temp folder).
3. (issue 15) End-to-end ``quanguard audit ingest FILE`` (a subprocess: CLI start, streaming
   parse, redaction, alert rules on, hashing, commits) vs a plain ``sqlite3`` executemany of
   the very rows it stored, into a table without indexes (goal >= 0.2x) and into the trail's
   table with its indexes (goal >= 0.5x); figures by wall time and by CPU time (the machine
   is shared, so wall time also measures the neighbours). On both sides the database and
   its tables exist before the clock starts (``audit status`` runs the migrations first),
   and the project's bytecode is compiled first, as an installed copy's is.
   An information row repeats the indexed anchor with the page cache our streamed appends
   set (``BULK_CACHE_KIB``): the goal's anchor is plain sqlite3 with its defaults.
   ``--e2e-events 100000,1000000`` measures several file sizes (rows name their size).
4. (issue 15) ``POST /v1/events/batch`` events/s on one worker (NDJSON bodies of 1,000
   lines, 4 clients; goal >= 10,000), and the peak RSS of ``audit ingest`` of a big file
   (``--rss-events``, 5,000,000 for the issue's goal of < 500 MB).

Run from the repository root: ``python bench/audit_ingest.py [--quick] [--events N]``.
``generate_lines`` is shared with the search benchmark and the slow tests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import CLI, SharedWork, child_usage, compile_bytecode, create_key, run_clients, served

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ORGS = ["市大数据局", "市卫健委", "市公安局", "市人社局", "历下区政务服务中心", "某银行济南分行"]
ROLES = ["consumer", "provider", "manager"]
ACTIONS = ["query", "read_masked", "export", "aggregate", "download", "api_call", "read_raw"]
DATASETS = ["户籍人口", "社保缴纳", "不动产登记", "企业登记", "医保结算", "公积金", "交通违法"]
GRADES = ["L1", "L2", "L3", "L4"]
PURPOSES = ["月度统计报表", "资格核验", "信用评估", "政务服务办件", "风险监测", "fraud review",
            "人口普查数据比对", "课题研究（已审批）"]
FIELDS = [["姓名"], ["姓名", "身份证号"], ["手机号"], ["地址", "姓名"], ["统一社会信用代码"]]


def iter_lines(n: int, *, seed: int = 7, end: datetime | None = None,
               span: timedelta = timedelta(days=30)) -> Iterator[str]:
    """``n`` NDJSON lines in the reporter format, timestamps spread over ``span`` before
    ``end`` (default: now - 10 min), in time order — generated lazily."""
    rng = random.Random(seed)
    end = end or datetime.now(UTC) - timedelta(minutes=10)
    start = end - span
    step = span / max(n, 1)
    for i in range(n):
        actor = rng.randrange(500)
        yield json.dumps({
            "ts": (start + step * i).isoformat(),
            "actor": {"id": f"user-{actor:04d}", "role": ROLES[actor % 3],
                      "org": ORGS[actor % len(ORGS)]},
            "action": rng.choice(ACTIONS),
            "dataset": rng.choice(DATASETS),
            "fields": rng.choice(FIELDS),
            "grade": rng.choice(GRADES),
            "rows": rng.randrange(1, 500),
            "purpose": rng.choice(PURPOSES),
            "decision": "deny" if rng.random() < 0.05 else "allow",
            "source_ip": f"10.{actor % 256}.{i % 256}.{rng.randrange(1, 255)}",
        }, ensure_ascii=False)


def generate_lines(n: int, *, seed: int = 7, end: datetime | None = None,
                   span: timedelta = timedelta(days=30)) -> list[str]:
    """:func:`iter_lines` as a list (shared with the search benchmark and the slow tests)."""
    return list(iter_lines(n, seed=seed, end=end, span=span))


def bench_batch(n: int, batch: int, workdir: Path) -> dict[str, float]:
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from monitor.ingest import parse_batch
    from monitor.store import METADATA, AuditStore, create_schema
    from quanguard.db import make_engine

    lines = generate_lines(n)
    t0 = time.perf_counter()
    events = list(parse_batch(lines, reporter="bench", now=datetime.now(UTC),
                              max_lines=None).events)
    parse_s = time.perf_counter() - t0

    engine = make_engine(f"sqlite:///{workdir / 'ours.db'}")
    create_schema(engine)
    store = AuditStore()
    t0 = time.perf_counter()
    for i in range(0, len(events), batch):
        with Session(engine) as s, s.begin():
            store.append(s, events[i:i + batch])
    ours_s = time.perf_counter() - t0
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.select(*[c for c in METADATA.tables[
            "audit_events"].columns]).order_by(sa.text("seq")))]
    engine.dispose()

    # The anchor: the same table (same DDL and indexes), the same rows, plain sqlite3.
    ddl_db = sqlite3.connect(workdir / "ours.db")
    ddl = [r[0] for r in ddl_db.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'audit_events' AND sql IS NOT NULL")]
    ddl_db.close()
    plain = sqlite3.connect(workdir / "plain.db", isolation_level=None)
    plain.execute("PRAGMA journal_mode=WAL")
    plain.execute("PRAGMA synchronous=NORMAL")
    for statement in ddl:
        plain.execute(statement)
    marks = ",".join("?" * len(rows[0]))
    t0 = time.perf_counter()
    for i in range(0, len(rows), batch):
        plain.execute("BEGIN IMMEDIATE")
        plain.executemany(f"INSERT INTO audit_events VALUES ({marks})", rows[i:i + batch])
        plain.execute("COMMIT")
    anchor_s = time.perf_counter() - t0
    plain.close()
    ours, anchor = n / ours_s, n / anchor_s
    return {"ours": ours, "anchor": anchor, "ratio": ours / anchor, "parse_per_s": n / parse_s,
            "end_to_end": n / (parse_s + ours_s)}


def bench_post(total: int, clients: int, workdir: Path) -> dict[str, float]:
    import httpx

    env = _env(workdir)
    key = create_key(env, workdir, role="reporter", org="市卫健委", name="bench")
    with served(env, workdir) as base:
        lines = generate_lines(total, seed=11)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        # warm-up (redactor cache, first checkpoint)
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            for ln in lines[:20]:
                c.post("/v1/events", content=ln).raise_for_status()
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        work = SharedWork(lines[20:])

        def client() -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
                for ln in work:
                    t = time.perf_counter()
                    r = c.post("/v1/events", content=ln)
                    dt = time.perf_counter() - t
                    with lock:
                        latencies.append(dt)
                        if r.status_code != 201:
                            errors.append(f"{r.status_code} {r.text[:100]}")

        wall = run_clients(clients, client)
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return {"p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "rps": len(latencies) / wall,
            "errors": float(len(errors)), "requests": float(len(latencies))}


def _env(workdir: Path) -> dict[str, str]:
    return {**os.environ, "QUANGUARD_DB_URL": f"sqlite:///{workdir / 'svc.db'}",
            "QUANGUARD_KEY_DIR": str(workdir / "keys"), "QUANGUARD_DATA_DIR": str(workdir),
            "QUANGUARD_POLICY_DIR": str(ROOT / "policies"), "QUANGUARD_ES_URL": "",
            "QUANGUARD_AUTH_FAIL_LIMIT": "1000", "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
            "PYTHONPATH": str(ROOT)}


def write_file(path: Path, n: int, seed: int = 7) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for ln in iter_lines(n, seed=seed):
            fh.write(ln + "\n")


def init_trail(workdir: Path) -> None:
    """Create the service's database (migrations) and signing key before anything is
    timed, as the anchor's table is created before its clock starts: a one-time set-up,
    not part of an ingest (``audit status`` appends no event)."""
    subprocess.run([sys.executable, "-m", "quanguard.cli.main", "audit", "status", "--format",
                    "json"], env=_env(workdir), cwd=workdir, capture_output=True, check=True)


def run_cli_ingest(path: Path, workdir: Path) -> dict[str, float]:
    """``quanguard audit ingest PATH`` in a subprocess: wall, CPU and peak RSS (its own, from
    ``wait4``: not the largest of the children this bench started before it)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([*CLI, "audit", "ingest", str(path), "--format", "json"],
                            env=_env(workdir), cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, cpu = child_usage(proc)
    wall = time.perf_counter() - t0
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"audit ingest failed ({proc.returncode}): {err[-2000:]}")
    doc = json.loads(out.strip().splitlines()[-1])
    return {"wall": wall, "cpu": cpu, "peak_rss": float(peak),
            "accepted": float(doc["accepted"]), "inner_seconds": float(doc["seconds"])}


def bench_end_to_end(n: int, workdir: Path) -> dict[str, float]:
    """Our CLI ingest vs plain sqlite3 executemany of the same stored rows (no indexes /
    the trail's indexes), 10,000 rows a transaction like the CLI's chunks."""
    path = workdir / "events.ndjson"
    write_file(path, n)
    init_trail(workdir)
    ours = run_cli_ingest(path, workdir)
    src = sqlite3.connect(workdir / "svc.db")
    cols = [r[1] for r in src.execute("PRAGMA table_info(audit_events)")]
    rows = src.execute(f"SELECT {', '.join(cols)} FROM audit_events ORDER BY seq").fetchall()
    ddl = [r[0] for r in src.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'audit_events' AND sql IS NOT NULL")]
    src.close()
    assert len(rows) == n, (len(rows), n)

    def plain(name: str, statements: list[str], cache_kib: int | None = None
              ) -> tuple[float, float]:
        db = sqlite3.connect(workdir / f"{name}.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if cache_kib is not None:
            db.execute(f"PRAGMA cache_size=-{cache_kib}")
        for st in statements:
            db.execute(st)
        marks = ",".join("?" * len(cols))
        w0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(rows), 10_000):
            db.execute("BEGIN IMMEDIATE")
            db.executemany(f"INSERT INTO audit_events VALUES ({marks})", rows[i:i + 10_000])
            db.execute("COMMIT")
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        db.close()
        return wall, cpu

    bare = f"CREATE TABLE audit_events ({', '.join(cols)})"
    nw, nc = plain("plain_noidx", [bare])
    iw, ic = plain("plain_idx", ddl)
    # the anchor again with the page cache our streamed appends use (information: the
    # goal's anchor is plain sqlite3 with its defaults, above)
    from quanguard.usecases.audit import BULK_CACHE_KIB

    cw, cc = plain("plain_idx_cache", ddl, BULK_CACHE_KIB)
    return {"n": float(n), "ours_wall": ours["wall"], "ours_cpu": ours["cpu"],
            "noidx_wall": nw, "noidx_cpu": nc, "idx_wall": iw, "idx_cpu": ic,
            "cache_wall": cw, "cache_cpu": cc, "cache_kib": float(BULK_CACHE_KIB),
            "ours_rss": ours["peak_rss"]}


def bench_post_batch(total: int, workdir: Path, *, lines_per_post: int = 1_000,
                     clients: int = 4) -> dict[str, float]:
    """POST /v1/events/batch to one uvicorn worker: events/s (alerts and checkpoints on)."""
    import httpx

    env = _env(workdir)
    key = create_key(env, workdir, role="reporter", org="市卫健委", name="bench-b")
    with served(env, workdir, timeout=180) as base:
        lines = list(iter_lines(total, seed=13))
        bodies = ["\n".join(lines[i:i + lines_per_post]) for i in range(0, total, lines_per_post)]
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
        with httpx.Client(base_url=base, headers=headers, timeout=300) as c:  # warm-up
            c.post("/v1/events/batch", content=bodies[0]).raise_for_status()
        work = SharedWork(bodies[1:])
        lock = threading.Lock()
        accepted: list[int] = []
        errors: list[str] = []

        def client() -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=300) as c:
                for body in work:
                    r = c.post("/v1/events/batch", content=body)
                    with lock:
                        if r.status_code == 200:
                            accepted.append(int(r.json()["accepted"]))
                        else:
                            errors.append(f"{r.status_code} {r.text[:100]}")

        wall = run_clients(clients, client)
    return {"events_per_s": sum(accepted) / wall, "events": float(sum(accepted)),
            "errors": float(len(errors))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a minute or two)")
    ap.add_argument("--events", type=int, default=None, help="events for the batch ingest")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--posts", type=int, default=None, help="single-event POSTs")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--no-http", action="store_true", help="skip the POST latency part")
    ap.add_argument("--e2e-events", default=None,
                    help="events for the end-to-end CLI ingest, one size or several separated "
                         "by commas, e.g. 100000,1000000 (default 100,000; quick 20,000)")
    ap.add_argument("--batch-posts", type=int, default=None,
                    help="events POSTed to /v1/events/batch (default 100,000; quick 20,000)")
    ap.add_argument("--rss-events", type=int, default=0,
                    help="also ingest a file of this many events and report peak RSS (5000000)")
    ap.add_argument("--only-15", action="store_true", help="only the issue-15 figures")
    ap.add_argument("--no-e2e", action="store_true", help="skip the end-to-end CLI comparison")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other rows of an existing results file (parts run separately)")
    args = ap.parse_args()
    n = args.events or (20_000 if args.quick else 100_000)
    posts = args.posts or (1_000 if args.quick else 5_000)
    rows: list[dict[str, object]] = []
    notes = ""
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="qg-bench-") as tmp:
        work = Path(tmp)
        if not args.only_15:
            (work / "batch").mkdir()
            b = bench_batch(n, args.batch, work / "batch")
            rows += [
                {"metric": "batch ingest events/s (hash+chain+commit) vs plain sqlite3 "
                           "executemany of the same rows (ours/anchor)",
                 "ours": round(b["ours"], 1), "anchor": round(b["anchor"], 1),
                 "ratio": round(b["ratio"], 3), "goal": ">= 0.35", "unit": "events/s",
                 "met": b["ratio"] >= 0.35},
                {"metric": "NDJSON parse+validate events/s (no anchor)",
                 "ours": round(b["parse_per_s"], 1), "anchor": None, "ratio": None,
                 "goal": None, "unit": "events/s", "met": None}]
            notes = f"batch part: {n:,} events, SQLite WAL (synchronous=NORMAL), batches of {args.batch}"
        sizes = ([int(x.replace("_", "")) for x in str(args.e2e_events).split(",")]
                 if args.e2e_events else [20_000 if args.quick else 100_000])
        for e2e_n in ([] if args.no_e2e else sizes):
            (work / f"e2e-{e2e_n}").mkdir()
            load0 = os.getloadavg()[0]
            e = bench_end_to_end(e2e_n, work / f"e2e-{e2e_n}")
            load1 = os.getloadavg()[0]
            for label, key_w, key_c, goal in (
                    ("a table without indexes", "noidx_wall", "noidx_cpu", 0.2),
                    ("the trail's table with its indexes", "idx_wall", "idx_cpu", 0.5),
                    ((f"the trail's table with its indexes and the {int(e['cache_kib']) // 1024} "
                     f"MiB page cache of our streamed appends (information)"),
                     "cache_wall", "cache_cpu", None)):
                ours_w, anc_w = e2e_n / e["ours_wall"], e2e_n / e[key_w]
                ours_c, anc_c = e2e_n / e["ours_cpu"], e2e_n / e[key_c]
                for by, ours, anc, unit in (("wall", ours_w, anc_w, "events/s"),
                                            ("CPU", ours_c, anc_c, "events/s (CPU)")):
                    rows.append({
                        "metric": f"end-to-end `quanguard audit ingest` of {e2e_n:,} events (CLI "
                                  f"start, parse, redaction, alerts on, hashing, commits) vs plain "
                                  f"sqlite3 executemany of the stored rows into {label}, by {by} "
                                  "time (ours/anchor)",
                        "ours": round(ours), "anchor": round(anc), "ratio": round(ours / anc, 3),
                        "goal": f">= {goal}" if goal else None, "unit": unit,
                        "met": ours / anc >= goal if goal else None})
            notes += (f"; end to end, {e2e_n:,} events: one CLI process (streaming, chunks of "
                      f"10,000), SQLite WAL, policies/alerts.yaml on, ours {e['ours_wall']:.1f} s "
                      f"wall / {e['ours_cpu']:.1f} s CPU, peak RSS {e['ours_rss'] / 1e6:,.0f} MB "
                      f"({e['ours_rss'] / 2**20:,.0f} MiB), load average {load0:.1f} -> {load1:.1f}")
        if not args.no_http:
            bp_n = args.batch_posts or (20_000 if args.quick else 100_000)
            (work / "bp").mkdir()
            bp = bench_post_batch(bp_n, work / "bp")
            rows.append({"metric": "POST /v1/events/batch events/s, one worker (1,000-line bodies, "
                                   "4 clients, alerts + checkpoints on)",
                         "ours": round(bp["events_per_s"]), "anchor": None, "ratio": None,
                         "goal": ">= 10,000", "unit": "events/s",
                         "met": bp["events_per_s"] >= 10_000})
            notes += f"; batch POSTs: {int(bp['events']):,} events, {int(bp['errors'])} errors"
        if not args.no_http and not args.only_15:
            p = bench_post(posts, args.clients, work)
            rows += [
                {"metric": f"POST /v1/events p50 latency, {args.clients} concurrent clients",
                 "ours": round(p["p50_ms"], 2), "anchor": None, "ratio": None, "goal": None,
                 "unit": "ms", "met": None},
                {"metric": f"POST /v1/events p99 latency, {args.clients} concurrent clients",
                 "ours": round(p["p99_ms"], 2), "anchor": None, "ratio": None, "goal": None,
                 "unit": "ms", "met": None},
                {"metric": "POST /v1/events throughput", "ours": round(p["rps"], 1),
                 "anchor": None, "ratio": None, "goal": None, "unit": "requests/s",
                 "met": None},
            ]
            notes += (f"; {int(p['requests'])} single-event POSTs over {args.clients} clients "
                      f"to one uvicorn worker (SQLite, alerts + checkpoints on), "
                      f"{int(p['errors'])} errors")
        if args.rss_events:
            (work / "rss").mkdir()
            path = work / "rss" / "big.ndjson"
            write_file(path, args.rss_events, seed=5)
            init_trail(work / "rss")
            r = run_cli_ingest(path, work / "rss")
            rows.append({"metric": f"peak RSS of `quanguard audit ingest` of a {args.rss_events:,}-event "
                                   "file (streaming)",
                         "ours": round(r["peak_rss"] / 1e6, 1), "anchor": None, "ratio": None,
                         "goal": "< 500 MB", "unit": "MB (decimal)", "met": r["peak_rss"] < 500e6})
            notes += (f"; RSS run: {int(r['accepted']):,} events in {r['wall']:.0f} s wall, "
                      f"{r['cpu']:.0f} s CPU, peak {int(r['peak_rss']):,} bytes "
                      f"({r['peak_rss'] / 2**20:,.1f} MiB)")
    print("| metric | ours | anchor | ratio | goal | met |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['metric']} | {row['ours']} {row['unit']} | {row['anchor'] or '—'} | "
              f"{row['ratio'] or '—'} | {row['goal'] or '—'} | {row['met'] if row['met'] is not None else '—'} |")
    out = ROOT / "bench" / "results" / "audit_ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.merge and out.exists():
        old = json.loads(out.read_text(encoding="utf-8"))
        mine = {r["metric"] for r in rows}
        # rows of the end-to-end comparison named before it said its size are replaced too
        stale = ("end-to-end `quanguard audit ingest` (", "the same by CPU time (ours/anchor)")
        if any(str(m).startswith("end-to-end `quanguard audit ingest` of") for m in mine):
            mine |= {r["metric"] for r in old.get("rows", []) if str(r["metric"]).startswith(stale)}
        rows = [r for r in old.get("rows", []) if r["metric"] not in mine] + rows
        notes = f"{old.get('notes', '')}; {notes.lstrip('; ')}"
    out.write_text(json.dumps({"bench": "audit_ingest", "rows": rows, "notes": notes},
                              ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
