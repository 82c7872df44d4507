"""`kill -9` of the service and the CLI mid-work: nothing acknowledged is lost, nothing is
half-written, and the audit trail still verifies after a restart.

The service runs as a real ``quanguard serve`` subprocess (tests/security/served.py);
SIGKILL leaves it no chance to flush or clean up, as a power cut or the OOM killer would.
"""

from __future__ import annotations

import csv
import io
import json
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from quanguard.container import build_container
from tests.security.served import Served

pytestmark = pytest.mark.slow


def _event(tag: str, i: int) -> dict[str, Any]:
    return {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "actor": {"id": f"u{i % 50}", "role": "consumer", "org": "某银行"},
        "action": "query",
        "dataset": tag,
        "fields": ["姓名", "电话"],
        "grade": "L2",
        "rows": i % 100,
        "purpose": f"{tag} line {i}",
        "decision": "allow",
        "source_ip": "10.1.2.3",
    }


def _rows_by_dataset(served: Served, prefix: str) -> dict[str, int]:
    container = build_container(served.settings())
    try:
        with container.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT dataset, count(*) FROM audit_events WHERE dataset LIKE :p GROUP BY dataset"),
                {"p": prefix + "%"},
            ).all()
        return {str(d): int(n) for d, n in rows}
    finally:
        container.close()


def _verify(served: Served) -> None:
    r = served.cli("audit", "verify", "--format", "json")
    assert r.returncode == 0, f"audit verify failed after the crash: {r.stdout[-500:]} {r.stderr[-500:]}"


def test_kill9_during_batch_ingest_loses_no_acknowledged_event(tmp_path: Path) -> None:
    served = Served(tmp_path / "svc")
    served.start()
    reporter = served.make_key("reporter", org="政务服务网")
    acked: dict[str, int] = {}
    sent: set[str] = set()
    stop = threading.Event()
    lines_per_batch = 400

    def pump(worker: int) -> None:
        with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {reporter}"}, timeout=30) as http:
            n = 0
            while not stop.is_set():
                tag = f"kill9-{worker}-{n}"
                body = "\n".join(json.dumps(_event(tag, i), ensure_ascii=False) for i in range(lines_per_batch))
                sent.add(tag)
                try:
                    r = http.post("/v1/events/batch", content=body.encode())
                except httpx.HTTPError:
                    return  # the server died under us: this batch was never acknowledged
                if r.status_code == 200:
                    acked[tag] = r.json().get("accepted", lines_per_batch)
                n += 1

    workers = [threading.Thread(target=pump, args=(w,)) for w in range(3)]
    for t in workers:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(random.uniform(0.05, 0.4))  # land the kill at some point inside a batch
    served.kill()
    stop.set()
    for t in workers:
        t.join(timeout=30)
    assert len(acked) >= 6, "the service acknowledged too few batches before the kill"

    served.start()  # restart on the same store
    stored = _rows_by_dataset(served, "kill9-")
    lost = {tag: n for tag, n in acked.items() if stored.get(tag, 0) != n}
    assert not lost, f"acknowledged batches missing or partial after kill -9: {lost}"
    # One transaction per batch: an unacknowledged batch is all there or not at all.
    partial = {tag: n for tag, n in stored.items() if n not in (0, lines_per_batch)}
    assert not partial, f"half-stored batches: {partial}"
    assert set(stored) <= sent
    # The restarted service keeps appending to the same chain.
    with served.client(reporter) as http:
        r = http.post("/v1/events", json=_event("kill9-after", 0))
        assert r.status_code == 201, r.text
    served.stop()
    _verify(served)


def _big_csv(path: Path, rows: int) -> None:
    rnd = random.Random(7)
    surnames = "王李张刘陈杨赵黄周吴"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["姓名", "手机号", "区县", "金额", "备注"])
        for i in range(rows):
            w.writerow([
                rnd.choice(surnames) + rnd.choice("伟芳娜敏静丽强磊军洋"),
                f"13{rnd.randint(100_000_000, 999_999_999)}",
                rnd.choice(["历下区", "市中区", "槐荫区"]),
                rnd.randint(1, 10_000),
                f"第{i}条 联系人电话 139{rnd.randint(10_000_000, 99_999_999)}",
            ])


def test_kill9_during_masking_leaves_no_half_written_output(tmp_path: Path) -> None:
    served = Served(tmp_path / "svc")  # only for its store and environment; not started
    served.make_key("manager")  # the trail is not empty (an empty trail fails verification by design)
    assert served.cli("keys", "create", "--role", "auditor", "--org", "网信办", "--name", "a1").returncode == 0
    src = tmp_path / "big.csv"
    _big_csv(src, 300_000)
    out = tmp_path / "masked.csv"
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "quanguard.cli.main", "mask", str(src), "-o", str(out), "--format", "json"],
        cwd=served.root, env=served.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    # Wait until the masker is writing (a temp file appears next to OUT) or a bounded time.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        partials = [p for p in tmp_path.iterdir() if p.name != out.name and p.name.startswith((".masked", "masked"))]
        if partials:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    finished_early = proc.poll() is not None
    proc.kill()
    _, err = proc.communicate(timeout=30)
    if finished_early:
        pytest.skip(f"masking finished before the kill (exit {proc.returncode}: {err[-300:]!r}); raise the rows")
    assert not out.exists(), "a half-written output file exists after kill -9"
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name not in (src.name, "svc"))
    # A temp file may remain after SIGKILL (nothing can delete it), but never under OUT's name.
    assert all(name != out.name for name in leftovers), leftovers
    _verify(served)


def _dataset_csv(rows: int = 2000) -> bytes:
    rnd = random.Random(5)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["member", "district", "income"])
    for i in range(rows):
        w.writerow([f"M{i:06d}", rnd.choice(["历下区", "市中区", "槐荫区"]), rnd.randint(0, 30_000)])
    return buf.getvalue().encode()


def test_kill9_during_exchange_jobs_keeps_acknowledged_jobs_and_budget(tmp_path: Path) -> None:
    served = Served(tmp_path / "svc")
    served.start()
    provider = served.make_key("provider", org="市卫健委")
    consumer = served.make_key("consumer", org="某银行")
    with served.client(provider) as http:
        r = http.post("/v1/exchange/datasets", data={"name": "members", "key_column": "member",
                                                     "bounds": "income=0:30000"},
                      files={"file": ("members.csv", _dataset_csv(), "text/csv")})
        assert r.status_code == 201, r.text
    acked: list[dict[str, Any]] = []
    stop = threading.Event()
    eps = 0.05

    def pump() -> None:
        with served.client(consumer) as http:
            while not stop.is_set():
                try:
                    r = http.post("/v1/exchange/aggregate", json={
                        "dataset": "members", "agg": "mean", "column": "income", "by": ["district"],
                        "epsilon": eps, "purpose": f"kill9 {uuid.uuid4().hex[:6]}"})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    acked.append(r.json())

    threads = [threading.Thread(target=pump) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0.02, 0.2))
    served.kill()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acked) >= 5

    served.start()
    with served.client(consumer) as http:
        for job in acked:
            r = http.get(f"/v1/exchange/jobs/{job['job']}")
            assert r.status_code == 200, f"acknowledged job {job['job']} lost: {r.text}"
            assert r.json()["result"] == job["result"], "a job's stored result differs from the one delivered"
        budget = http.get("/v1/exchange/datasets/members/budget").json()
        listed = http.get("/v1/exchange/jobs").json()
    done = [j for j in listed if j.get("status") == "done"]
    # Budget accounting survived: what was spent covers every acknowledged job and every
    # stored job (an in-flight job may have committed without its answer reaching us).
    seen = f"acked {len(acked)}, stored done {len(done)}, statuses {sorted({j.get('status') for j in listed})}, {budget}"
    assert budget["epsilon_spent"] >= len(acked) * eps - 1e-9, seen
    assert budget["epsilon_spent"] == pytest.approx(len(done) * eps, abs=1e-6), seen
    served.stop()
    _verify(served)
