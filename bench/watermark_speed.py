"""Watermark throughput: embed and detect vs a plain read+write of the same file.

One core (Arrow thread pools set to 1); times are this process's CPU seconds
(``time.process_time``), because the bench machine is shared and wall time measures the
neighbours; the wall time of the whole run is printed in the notes. The same CSV is (a) read and written unchanged
through ``desensitize.tableio`` — the anchor —, (b) read, marked and written, (c) read and
tested against 1,000 registered recipients. The in-memory rates (Arrow batches in, no
file I/O) are the domain's own speed, on the people table and on an extract whose masked
phone, hash pseudonym and two fakes carry marks found by value (half as many rows); the
issue asks >= 200,000 rows/s.

    .venv/bin/python bench/watermark_speed.py [--rows 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pyarrow as pa
import pyarrow.csv as pacsv

from desensitize.tableio import open_table, open_writer
from tests.watermark.attacks import extract_table, sample_table
from watermark import Detector, Embedder, IssuedCopy, Params, Verdict, codeword, key_fingerprint
from watermark.hashing import codeword_hex

SECRET = b"bench-secret-0123456789abcdef012"
GOAL = 200_000


def _detect_seconds(copies: list[IssuedCopy], marked: list[pa.RecordBatch]) -> float:
    """CPU seconds to trace ``marked`` to one of ``copies`` (it must be bench-recipient's)."""
    t = time.process_time()
    det = Detector(SECRET, copies)
    for b in marked:
        det.feed(b)
    verdict = det.verdict()
    seconds = time.process_time() - t
    assert verdict.recipient == "bench-recipient", verdict.message
    return seconds


def _copy(src: Path, dst: Path) -> float:
    t = time.process_time()
    source = open_table(src)
    with open_writer(dst, schema=source.schema) as w:
        for b in source.iter_batches():
            w.write(b)
    return time.process_time() - t


def _embed_file(src: Path, dst: Path) -> tuple[float, object]:
    t = time.process_time()
    source = open_table(src)
    emb = Embedder(SECRET, "bench-recipient")
    with open_writer(dst, schema=source.schema) as w:
        for b in source.iter_batches():
            w.write(emb.mark(b))
        report = emb.report()
    return time.process_time() - t, report


def _read(src: Path) -> float:
    t = time.process_time()
    for _ in open_table(src).iter_batches():
        pass
    return time.process_time() - t


def _detect_file(src: Path, copies: list[IssuedCopy]) -> tuple[float, Verdict]:
    t = time.process_time()
    det = Detector(SECRET, copies)
    for b in open_table(src).iter_batches():
        det.feed(b)
    verdict = det.verdict()
    return time.process_time() - t, verdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="200,000 rows")
    args = ap.parse_args()
    rows = 200_000 if args.quick else args.rows
    wall0 = time.perf_counter()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    tmp = Path(tempfile.mkdtemp(prefix="qg-wm-bench-"))
    table = sample_table(rows, seed=1)
    src = tmp / "people.csv"
    pacsv.write_csv(table, src)
    batches = table.to_batches(max_chunksize=65_536)

    # In memory: the domain alone.
    t = time.process_time()
    emb = Embedder(SECRET, "bench-recipient")
    marked = [emb.mark(b) for b in batches]
    report = emb.report()
    embed_mem = time.process_time() - t
    copies = [IssuedCopy(f"r{i}", "people", report.plan,
                         codeword_hex(codeword(SECRET, f"r{i}", report.plan.code_bits)),
                         key_fingerprint(SECRET)) for i in range(999)]
    copies.append(IssuedCopy("bench-recipient", "people", report.plan, report.codeword,
                             report.key_fingerprint))
    detect_mem = _detect_seconds(copies, marked)

    # In memory, an extract whose marks are found by value: a masked phone, a hash
    # pseudonym, made-up phone and bank card (plus an amount and a date).
    extract = extract_table(rows // 2, seed=1).to_batches(max_chunksize=65_536)
    xparams = Params(pseudonyms=("联系电话", "银行卡"))
    t = time.process_time()
    xemb = Embedder(SECRET, "bench-recipient", xparams)
    xmarked = [xemb.mark(b) for b in extract]
    xreport = xemb.report()
    x_embed = time.process_time() - t
    xcopies = [IssuedCopy(c.recipient, "extract", xreport.plan,
                          codeword_hex(codeword(SECRET, c.recipient, xreport.plan.code_bits)),
                          key_fingerprint(SECRET)) for c in copies]
    x_detect = _detect_seconds(xcopies, xmarked)
    x_rows = rows // 2

    # Files: the same CSV, anchor and ours in the same run.
    copy_s = _copy(src, tmp / "plain.csv")
    embed_s, _ = _embed_file(src, tmp / "marked.csv")
    read_s = _read(tmp / "marked.csv")
    detect_s, fverdict = _detect_file(tmp / "marked.csv", copies)
    assert fverdict.recipient == "bench-recipient"

    def rate(s: float) -> float:
        return round(rows / s, 1)

    results = [
        {"metric": "embed rows/s in memory (Arrow batches; 3 numeric, 1 date and 1 masked column marked)",
         "ours": rate(embed_mem), "anchor": None, "ratio": None, "goal": f">= {GOAL:,}",
         "unit": "rows/s", "met": rows / embed_mem >= GOAL},
        {"metric": "detect rows/s in memory (1,000 recipients)",
         "ours": rate(detect_mem), "anchor": None, "ratio": None, "goal": f">= {GOAL:,}",
         "unit": "rows/s", "met": rows / detect_mem >= GOAL},
        {"metric": "embed rows/s in memory, extract (masked phone, hash pseudonym, 2 fakes, "
                   "amount, date marked)",
         "ours": round(x_rows / x_embed, 1), "anchor": None, "ratio": None,
         "goal": f">= {GOAL:,}", "unit": "rows/s", "met": x_rows / x_embed >= GOAL},
        {"metric": "detect rows/s in memory, extract (1,000 recipients)",
         "ours": round(x_rows / x_detect, 1), "anchor": None, "ratio": None,
         "goal": f">= {GOAL:,}", "unit": "rows/s", "met": x_rows / x_detect >= GOAL},
        {"metric": "embed CSV→CSV rows/s vs plain tableio read+write",
         "ours": rate(embed_s), "anchor": rate(copy_s), "ratio": round(copy_s / embed_s, 3),
         "goal": "report", "unit": "rows/s", "met": None},
        {"metric": "detect CSV rows/s vs plain tableio read",
         "ours": rate(detect_s), "anchor": rate(read_s), "ratio": round(read_s / detect_s, 3),
         "goal": "report", "unit": "rows/s", "met": None},
    ]
    print("| metric | ours | anchor | ratio | goal | met |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['metric']} | {r['ours']:,} | {r['anchor'] or '—'} | {r['ratio'] or '—'} "
              f"| {r['goal']} | {r['met']} |")
    out = {"bench": "watermark_speed", "rows": results,
           "notes": f"{rows:,} rows x 9 columns, one core (Arrow pools = 1), one run, CPU "
                    f"seconds; {report.marked_cells:,} cells marked; ratio = anchor time / "
                    f"our time; wall time of the run {time.perf_counter() - wall0:.1f} s"}
    (REPO / "bench" / "results").mkdir(exist_ok=True)
    (REPO / "bench" / "results" / "watermark_speed.json").write_text(
        json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
