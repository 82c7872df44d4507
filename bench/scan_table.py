"""Table scan throughput: our Arrow-vectorised scanner vs Presidio's BatchAnalyzerEngine
with the same recognizers, on the same generated government export.

Ours: every row (``--full`` mode), columns typed from RE2 candidate kernels + Python
validators.  Anchor: Presidio ``BatchAnalyzerEngine.analyze_dict`` over the cells of a
subsample (it is ~1000x slower; rows/s is extrapolated from the subsample — said so in
the output), a column typed by the entity found in most of its cells (>= 50%).
Column-typing F1 of both is printed beside the ratio; Presidio's per-cell F1 too.
Optionally (``--memory-mb N``) builds a CSV of about N MB and measures the peak RSS of
``quanguard scan FILE --full`` in a subprocess.

    python bench/scan_table.py [--quick] [--rows 100000] [--presidio-rows 2000] [--memory-mb 0]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import cast

import pyarrow as pa
from _common import peak_rss  # bench/_common.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
_spec = importlib.util.spec_from_file_location("pii_gen", ROOT / "tests" / "desensitize" / "data" / "pii_gen.py")
gen = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(gen)  # type: ignore[union-attr]

GOLD = {"XM": "PERSON", "SFZH": "CN_RESIDENT_ID", "LXDH": "PHONE_NUMBER", "JTZZ": "LOCATION",
        "YHKH": "CN_BANK_CARD", "CPHM": "CN_LICENSE_PLATE", "DZYX": "EMAIL_ADDRESS",
        "TYSHXYDM": "CN_USCC", "HZHM": "CN_PASSPORT", "DLIP": "IP_ADDRESS",
        "XB": None, "NL": None, "SQSJ": None, "BLZT": None, "SL": None, "LSH": None}


def make_table(rows: int, seed: int = 11) -> pa.Table:
    from faker import Faker

    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    base = min(rows, 20_000)  # generate a block, repeat it (generation is the slow part)
    cols = {
        "XM": [gen.person(rng, fake) for _ in range(base)],
        "SFZH": [gen.resident_id(rng) for _ in range(base)],
        "LXDH": [gen.mobile(rng) if rng.random() < 0.85 else gen.landline(rng) for _ in range(base)],
        "JTZZ": [gen.address(rng) for _ in range(base)],
        "YHKH": [gen.bank_card(rng) for _ in range(base)],
        "CPHM": [gen.plate(rng) for _ in range(base)],
        "DZYX": [gen.email(rng, fake) for _ in range(base)],
        "TYSHXYDM": [gen.uscc(rng) for _ in range(base)],
        "HZHM": [gen.passport(rng) for _ in range(base)],
        "DLIP": [gen.ip(rng, fake) for _ in range(base)],
        "XB": [rng.choice(["男", "女"]) for _ in range(base)],
        "NL": [str(rng.randrange(18, 90)) for _ in range(base)],
        "SQSJ": [f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} 09:{rng.randrange(60):02d}" for _ in range(base)],
        "BLZT": [rng.choice(["已办结", "办理中", "待受理", "已退回"]) for _ in range(base)],
        "SL": [str(rng.randrange(1, 5000)) for _ in range(base)],
        "LSH": [f"JN{2024_0000_0000 + i}" for i in range(base)],
    }
    block = pa.table(cols)
    reps = -(-rows // base)
    return pa.concat_tables([block] * reps).slice(0, rows)


def column_f1(pred: dict[str, str | None]) -> float:
    tp = sum(1 for c, e in pred.items() if e is not None and e == GOLD[c])
    fp = sum(1 for c, e in pred.items() if e is not None and e != GOLD[c])
    fn = sum(1 for c, e in GOLD.items() if e is not None and pred.get(c) != e)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def run_ours(table: pa.Table) -> tuple[float, dict[str, str | None]]:
    from desensitize import TableScanner

    scanner = TableScanner()
    scanner.scan(table.slice(0, 1000).to_batches(), sampled=False)  # warm-up: tables, regexes
    t0 = time.perf_counter()
    report = scanner.scan(table.to_batches(max_chunksize=65_536), sampled=False)
    secs = time.perf_counter() - t0
    return table.num_rows / secs, {c.name: c.entity for c in report.columns}


def run_presidio(table: pa.Table, rows: int) -> tuple[float, dict[str, str | None], float]:
    from presidio_analyzer import BatchAnalyzerEngine, RecognizerResult

    from desensitize.text_scan import DEFAULT_THRESHOLDS, build_analyzer

    engine = BatchAnalyzerEngine(analyzer_engine=build_analyzer())  # type: ignore[arg-type]
    sub = table.slice(0, rows).to_pydict()
    assert engine.analyzer_engine is not None
    engine.analyzer_engine.analyze("预热 13812345678", language="zh")
    t0 = time.perf_counter()
    results = list(engine.analyze_dict(sub, language="zh"))
    secs = time.perf_counter() - t0
    pred: dict[str, str | None] = {}
    tp = fp = fn = 0
    for res in results:
        counts: Counter[str] = Counter()
        gold = GOLD[res.key]
        for cell, found in zip(res.value, res.recognizer_results, strict=True):
            kept = [r for r in cast("list[RecognizerResult]", found) if r.score >= max(0.4, DEFAULT_THRESHOLDS.get(r.entity_type, 0))]
            whole = {r.entity_type for r in kept if r.end - r.start >= 0.6 * len(cell.strip())}
            counts.update(whole)
            if gold in whole:
                tp += 1
            elif gold is not None:
                fn += 1
            fp += len(whole - {gold})
        top = counts.most_common(1)
        pred[res.key] = top[0][0] if top and top[0][1] >= 0.5 * len(res.value) else None
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    cell_f1 = 2 * p * r / (p + r) if p + r else 0.0
    return rows / secs, pred, cell_f1


def peak_memory(table: pa.Table, target_mb: int) -> tuple[float, float, int]:
    """Write a CSV of about ``target_mb`` MB and return (file MB, peak RSS MB, rows)."""

    tmp = Path(tempfile.mkdtemp(prefix="scanbench-"))
    path = tmp / "big.csv"
    block = table.slice(0, 20_000).to_pylist()
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(GOLD))
        w.writeheader()
        while fh.tell() < target_mb * 1024 * 1024:
            w.writerows(block)
            rows += len(block)
    size = path.stat().st_size / 1e6
    env = {**os.environ, "QUANGUARD_DATA_DIR": str(tmp / "var"),
           "QUANGUARD_DB_URL": f"sqlite:///{tmp / 'var' / 'q.db'}",
           "QUANGUARD_KEY_DIR": str(tmp / "var" / "keys"),
           "QUANGUARD_POLICY_DIR": str(ROOT / "policies")}
    exe = Path(sys.executable).parent / "quanguard"
    proc = subprocess.Popen([str(exe), "scan", str(path), "--full", "--format", "json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = peak_rss(proc, every=0.05)
    _out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"memory run failed: {err.decode()[:300]}")
    path.unlink()
    return size, peak / 1e6, rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--presidio-rows", type=int, default=1_000)
    ap.add_argument("--memory-mb", type=int, default=0)
    args = ap.parse_args()
    rows = 20_000 if args.quick else args.rows
    prows = 300 if args.quick else args.presidio_rows
    table = make_table(rows)
    ours_rps, ours_pred = run_ours(table)
    pres_rps, pres_pred, pres_cell_f1 = run_presidio(table, prows)
    ratio = ours_rps / pres_rps
    f1_ours, f1_pres = column_f1(ours_pred), column_f1(pres_pred)
    print(f"\n### table scan — {rows:,} rows × {table.num_columns} columns\n")
    print("| scanner | rows/s | column F1 | note |")
    print("|---|---|---|---|")
    print(f"| ours (Arrow kernels, full) | {ours_rps:,.0f} | {f1_ours:.3f} | all {rows:,} rows |")
    print(f"| Presidio BatchAnalyzerEngine | {pres_rps:,.1f} | {f1_pres:.3f} | measured on {prows:,} rows, "
          f"extrapolated; cell F1 {pres_cell_f1:.3f} |")
    print(f"| **ratio** | **{ratio:,.0f}x** | | goal >= 100x |")
    rows_out = [{"metric": "table scan rows/s vs Presidio BatchAnalyzerEngine (same recognizers)",
                 "ours": round(ours_rps, 1), "anchor": round(pres_rps, 2), "ratio": round(ratio, 1),
                 "goal": ">= 100", "unit": "rows/s", "met": ratio >= 100,
                 "f1_ours": round(f1_ours, 3), "f1_anchor": round(f1_pres, 3)}]
    notes = (f"{rows:,} generated rows x {table.num_columns} columns; Presidio measured on the first "
             f"{prows:,} rows and extrapolated; column F1 ours {f1_ours:.3f}, Presidio {f1_pres:.3f} "
             f"(cell F1 {pres_cell_f1:.3f})")
    if args.memory_mb and not args.quick:
        size, peak, mrows = peak_memory(table, args.memory_mb)
        print(f"\npeak RSS of `quanguard scan --full` on a {size:,.0f} MB CSV ({mrows:,} rows): {peak:,.0f} MB "
              f"(goal < 500 MB)")
        rows_out.append({"metric": f"peak RSS, quanguard scan --full on a {size:,.0f} MB CSV",
                         "ours": round(peak, 1), "anchor": None, "ratio": None, "goal": "< 500",
                         "unit": "MB", "met": peak < 500})
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scan_table.json").write_text(json.dumps({"bench": "scan_table", "rows": rows_out, "notes": notes},
                                                    indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
