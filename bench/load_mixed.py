"""Mixed-workload load test of a real `quanguard serve` on loopback, SQLite and PostgreSQL.

Each client loops over a weighted mix — NDJSON batch ingest (POST /v1/events/batch, 100
lines), single events (POST /v1/events), audit search (GET /v1/audit/search) and the
masking API (POST /v1/mask, 20 records) — for a fixed time per step while the number of
concurrent clients ramps (1, 2, 4, ... by default). Per endpoint and step it reports
throughput and p50/p99 latency; the *knee* is the first step where the overall p99 exceeds
3x its one-client value or throughput grows < 10% over the previous step.

Bounded: only 127.0.0.1, a fixed number of steps and seconds, a temporary store (a fresh
PostgreSQL schema, dropped afterwards). PostgreSQL runs with 1, 2 and 4 workers
(`serve --workers`, `--workers` to change) side by side. Writes bench/results/load_mixed.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx
from _common import free_port  # bench/_common.py

from tests.serving import pg_available, wait_ready

RESULTS = REPO / "bench" / "results"
PG_URL = os.environ.get("QUANGUARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
MIX = (("batch", 1), ("event", 4), ("search", 3), ("mask", 2))


@dataclass
class Server:
    root: Path
    db_url: str
    workers: int = 1
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUANGUARD_")}
        env.update({
            "QUANGUARD_DB_URL": self.db_url,
            "QUANGUARD_POLICY_DIR": str(REPO / "policies"),
            "QUANGUARD_KEY_DIR": str(self.root / "var" / "keys"),
            "QUANGUARD_DATA_DIR": str(self.root / "var"),
            "QUANGUARD_LOG_LEVEL": "WARNING",
            "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
        })
        return env

    def start(self) -> None:
        log = (self.root / "serve.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "quanguard.cli.main", "serve", "--port", str(self.port),
             "--workers", str(self.workers)],
            cwd=self.root, env=self.env(), stdout=log, stderr=log, start_new_session=True,
        )
        try:
            ready = wait_ready(self.proc, self.url, timeout=120 * self.workers,
                               logs=lambda: (self.root / "serve.log").read_text()[-800:])
        except AssertionError as exited:
            raise SystemExit(f"error: {exited}") from None
        if not ready:
            raise SystemExit("error: the server did not become ready in 120 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def make_keys(self) -> dict[str, str]:
        from quanguard.auth import create_key
        from quanguard.config import load_settings
        from quanguard.container import build_container

        settings = load_settings(db_url=self.db_url, policy_dir=REPO / "policies",
                                 key_dir=self.root / "var" / "keys", data_dir=self.root / "var")
        container = build_container(settings)
        try:
            with container.session() as s, s.begin():
                return {
                    role: create_key(s, role=role, org=org, name=f"load-{role}-{uuid.uuid4().hex[:6]}").key
                    for role, org in (("reporter", "政务服务网"), ("auditor", "市网信办"), ("manager", "市大数据局"))
                }
        finally:
            container.close()


def _event(rnd: random.Random) -> dict[str, Any]:
    return {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "actor": {"id": f"u{rnd.randint(1, 500)}", "role": "consumer", "org": rnd.choice(["某银行", "某研究所"])},
        "action": rnd.choice(["query", "download", "api_call"]),
        "dataset": rnd.choice(["社保缴费", "公积金", "医保结算", "不动产登记"]),
        "fields": ["姓名", "证件号码"],
        "grade": rnd.choice(["L2", "L3"]),
        "rows": rnd.randint(1, 1000),
        "purpose": "统计分析",
        "decision": "allow",
        "source_ip": f"10.0.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
    }


def _records(rnd: random.Random, n: int = 20) -> list[dict[str, str]]:
    return [{"姓名": rnd.choice("王李张刘陈") + rnd.choice("伟芳娜敏静"),
             "手机号": f"13{rnd.randint(100_000_000, 999_999_999)}",
             "区县": rnd.choice(["历下区", "市中区"]), "金额": str(rnd.randint(1, 9999))} for _ in range(n)]


async def _one(client: httpx.AsyncClient, kind: str, keys: dict[str, str], rnd: random.Random) -> int:
    if kind == "batch":
        body = "\n".join(json.dumps(_event(rnd), ensure_ascii=False) for _ in range(100)).encode()
        r = await client.post("/v1/events/batch", content=body, headers={"Authorization": f"Bearer {keys['reporter']}"})
    elif kind == "event":
        r = await client.post("/v1/events", json=_event(rnd), headers={"Authorization": f"Bearer {keys['reporter']}"})
    elif kind == "search":
        params: dict[str, str | int] = {"dataset": rnd.choice(["社保缴费", "公积金"]), "size": 20, "agg": "by_action"}
        r = await client.get("/v1/audit/search", params=params, headers={"Authorization": f"Bearer {keys['auditor']}"})
    else:
        r = await client.post("/v1/mask", json={"profile": "共享", "records": _records(rnd)},
                              headers={"Authorization": f"Bearer {keys['manager']}"})
    return r.status_code


async def _step(url: str, keys: dict[str, str], clients: int, seconds: float, seed: int) -> list[tuple[str, float, int]]:
    samples: list[tuple[str, float, int]] = []
    kinds = [k for k, w in MIX for _ in range(w)]
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker(i: int) -> None:
            rnd = random.Random(seed * 1000 + i)
            while time.monotonic() < stop_at:
                kind = rnd.choice(kinds)
                t0 = time.perf_counter()
                try:
                    status = await _one(client, kind, keys, rnd)
                except httpx.HTTPError:
                    status = -1
                samples.append((kind, time.perf_counter() - t0, status))

        await asyncio.gather(*(worker(i) for i in range(clients)))
    return samples


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summarize(samples: list[tuple[str, float, int]], seconds: float) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for kind in [k for k, _ in MIX] + ["all"]:
        rows = [s for s in samples if kind == "all" or s[0] == kind]
        ok = [lat for _, lat, st in rows if 200 <= st < 300]
        out[kind] = {
            "requests": len(rows),
            "rps": len(ok) / seconds,
            "p50_ms": _pct(ok, 50) * 1000,
            "p99_ms": _pct(ok, 99) * 1000,
            "errors": sum(1 for _, _, st in rows if not 200 <= st < 300),
            "server_errors": sum(1 for _, _, st in rows if st >= 500 or st == -1),
        }
    return out


def knee(steps: list[tuple[int, dict[str, dict[str, float]]]]) -> int | None:
    """Concurrency of the first step where latency degrades (see the module docstring)."""
    if not steps:
        return None
    base_p99 = steps[0][1]["all"]["p99_ms"]
    prev_rps = steps[0][1]["all"]["rps"]
    for clients, stats in steps[1:]:
        if stats["all"]["p99_ms"] > 3 * base_p99 or stats["all"]["rps"] < 1.10 * prev_rps:
            return clients
        prev_rps = stats["all"]["rps"]
    return None


def run_backend(backend: str, clients: list[int], seconds: float, workers: int = 1) -> dict[str, Any]:
    schema = None
    with tempfile.TemporaryDirectory(prefix="qg-load-") as tmp:
        root = Path(tmp)
        if backend == "sqlite":
            db_url = f"sqlite:///{root / 'var' / 'quanguard.db'}"
        else:
            from sqlalchemy import create_engine, text

            schema = f"qg_load_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            db_url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
        server = Server(root, db_url, workers)
        try:
            server.start()
            keys = server.make_keys()
            # Warm up (imports, scanner, first checkpoint) and give search something to find.
            asyncio.run(_step(server.url, keys, 2, min(3.0, seconds), seed=0))
            steps = []
            for i, n in enumerate(clients, start=1):
                samples = asyncio.run(_step(server.url, keys, n, seconds, seed=i))
                stats = summarize(samples, seconds)
                steps.append((n, stats))
                a = stats["all"]
                print(f"  {backend} x{workers} {n:>3} clients: {a['rps']:8.1f} req/s  p50 {a['p50_ms']:7.1f} ms  "
                      f"p99 {a['p99_ms']:7.1f} ms  errors {int(a['errors'])}", file=sys.stderr, flush=True)
        finally:
            server.stop()
            if schema is not None:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                admin.dispose()
    label = backend if backend == "sqlite" else f"{backend} ({workers} worker{'s' if workers > 1 else ''})"
    return {"backend": label, "steps": [{"clients": n, **s} for n, s in steps], "knee": knee(steps)}


def rows_for(result: dict[str, Any]) -> list[dict[str, Any]]:
    backend = result["backend"]
    steps = result["steps"]
    best = max(steps, key=lambda s: s["all"]["rps"])
    top = steps[-1]
    rows = [
        {"metric": f"{backend}: peak mixed throughput ({best['clients']} clients)", "ours": round(best["all"]["rps"], 1),
         "anchor": None, "ratio": None, "goal": None, "unit": "req/s", "met": None},
        {"metric": f"{backend}: clients where latency degrades (knee)", "ours": result["knee"] or f">{top['clients']}",
         "anchor": None, "ratio": None, "goal": None, "unit": "clients", "met": None},
        {"metric": f"{backend}: server errors (5xx/drops) over the whole ramp",
         "ours": int(sum(s[k]["server_errors"] for s in steps for k in ("all",))),
         "anchor": None, "ratio": None, "goal": "0", "unit": "", "met": all(s["all"]["server_errors"] == 0 for s in steps)},
    ]
    for kind, _ in MIX:
        st = top[kind]
        rows.append({"metric": f"{backend}: {kind} p50 / p99 at {top['clients']} clients",
                     "ours": f"{st['p50_ms']:.1f} / {st['p99_ms']:.1f}", "anchor": None, "ratio": None,
                     "goal": None, "unit": "ms", "met": None})
    return rows


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["| backend | clients | endpoint | req/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|---|"]
    for res in results:
        for step in res["steps"]:
            for kind in [k for k, _ in MIX] + ["all"]:
                s = step[kind]
                lines.append(f"| {res['backend']} | {step['clients']} | {kind} | {s['rps']:.1f} | {s['p50_ms']:.1f} | "
                             f"{s['p99_ms']:.1f} | {int(s['errors'])} |")
        lines.append(f"| {res['backend']} | knee | {res['knee'] or 'not reached'} | | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s steps, clients 1,4,16 (about a minute per backend)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--step-seconds", type=float, default=None)
    parser.add_argument("--clients", default=None, help="comma-separated ramp, e.g. 1,2,4,8,16,32")
    parser.add_argument("--out", type=Path, default=RESULTS / "load_mixed.json")
    parser.add_argument("--workers", default="1,2,4",
                        help="comma-separated worker counts to run on PostgreSQL side by side")
    args = parser.parse_args(argv)
    seconds = args.step_seconds or (3.0 if args.quick else 8.0)
    clients = [int(c) for c in (args.clients or ("1,4,16" if args.quick else "1,2,4,8,16,32")).split(",")]
    if max(clients) > 256 or seconds > 120:
        parser.error("keep it bounded: at most 256 clients and 120 s per step")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    pg_workers = [int(w) for w in args.workers.split(",")]
    notes = [(f"{seconds:g} s per step, ramp {clients}, mix {dict(MIX)}, loopback; SQLite one worker, "
              f"PostgreSQL with {pg_workers} `serve --workers`")]
    results = []
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    for backend in backends:
        if backend == "postgresql" and not pg_available(PG_URL):
            notes.append("PostgreSQL not reachable: skipped")
            continue
        for w in (pg_workers if backend == "postgresql" else [1]):
            results.append(run_backend(backend, clients, seconds, w))
    if load_before is not None:
        # The machine is shared: say how busy it was, so runs can be compared honestly.
        notes.append(f"1-minute load average {load_before:.1f} at the start, "
                     f"{os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores")
    print(markdown(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"bench": "load_mixed", "rows": [r for res in results for r in rows_for(res)],
               "notes": "; ".join(notes), "steps": results}
    args.out.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
