"""Accuracy of the text scanner on the labelled sets: precision, recall, F1 per entity.

Sets: ``tests/desensitize/data/labelled_{dev,heldout}.jsonl`` (Faker zh_CN values in
hand-written 12345-ticket, registration-form and export templates, plus government
prose with no personal data).  A prediction counts when entity and span match exactly
(``strict``) or when entity matches and spans overlap (``overlap``).
Prints a Markdown table and writes ``bench/results/scan_accuracy.json``.

    python bench/scan_accuracy.py [--split dev|heldout|all]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "tests" / "desensitize" / "data"


def load(split: str) -> list[dict]:
    path = DATA / f"labelled_{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate(records: list[dict], scanner: object, *, overlap: bool = False) -> dict:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    prose_fp = 0
    for rec in records:
        gold = {(s, e, ent) for s, e, ent in rec["spans"]}
        pred = {(f.start, f.end, f.entity) for f in scanner.scan(rec["text"])}  # type: ignore[attr-defined]
        if not rec["spans"]:
            prose_fp += len(pred)
        matched_gold = set()
        for p in pred:
            hit = None
            for g in gold:
                if g in matched_gold or g[2] != p[2]:
                    continue
                if (g[0], g[1]) == (p[0], p[1]) or (overlap and p[0] < g[1] and g[0] < p[1]):
                    hit = g
                    break
            if hit:
                matched_gold.add(hit)
                tp[p[2]] += 1
            else:
                fp[p[2]] += 1
        for g in gold - matched_gold:
            fn[g[2]] += 1
    rows = {}
    for ent in sorted(set(tp) | set(fp) | set(fn)):
        p = tp[ent] / (tp[ent] + fp[ent]) if tp[ent] + fp[ent] else 0.0
        r = tp[ent] / (tp[ent] + fn[ent]) if tp[ent] + fn[ent] else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        rows[ent] = {"precision": p, "recall": r, "f1": f, "tp": tp[ent], "fp": fp[ent], "fn": fn[ent]}
    T, F, N = sum(tp.values()), sum(fp.values()), sum(fn.values())
    mp = T / (T + F) if T + F else 0.0
    mr = T / (T + N) if T + N else 0.0
    micro = 2 * mp * mr / (mp + mr) if mp + mr else 0.0
    return {"entities": rows, "micro": {"precision": mp, "recall": mr, "f1": micro},
            "prose_false_positives": prose_fp, "records": len(records)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="all", choices=["dev", "heldout", "all"])
    args = ap.parse_args()
    from desensitize.text_scan import TextScanner

    scanner = TextScanner()
    out = {}
    for split in (["dev", "heldout"] if args.split == "all" else [args.split]):
        recs = load(split)
        t0 = time.perf_counter()
        strict = evaluate(recs, scanner)
        secs = time.perf_counter() - t0
        lenient = evaluate(recs, scanner, overlap=True)
        out[split] = {"strict": strict, "overlap": lenient, "seconds": secs}
        print(f"\n### scan accuracy — {split} ({strict['records']} records, {secs:.1f}s)\n")
        print("| entity | precision | recall | F1 (strict) | F1 (overlap) | tp | fp | fn |")
        print("|---|---|---|---|---|---|---|---|")
        for ent, row in strict["entities"].items():
            lo = lenient["entities"].get(ent, {"f1": 0.0})
            print(f"| {ent} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | "
                  f"{lo['f1']:.3f} | {row['tp']} | {row['fp']} | {row['fn']} |")
        m, lm = strict["micro"], lenient["micro"]
        print(f"| **micro** | {m['precision']:.3f} | {m['recall']:.3f} | **{m['f1']:.3f}** | "
              f"{lm['f1']:.3f} | | | |")
        print(f"\nfindings in policy prose (should be 0): {strict['prose_false_positives']}")
    rows = []
    for split, r in out.items():
        f1 = r["strict"]["micro"]["f1"]
        rows.append({"metric": f"micro F1, {split} set, exact spans", "ours": round(f1, 4), "anchor": None,
                     "ratio": None, "goal": ">= 0.95", "unit": "F1", "met": f1 >= 0.95})
        fps = r["strict"]["prose_false_positives"]
        rows.append({"metric": f"findings in policy prose, {split} set", "ours": fps, "anchor": None,
                     "ratio": None, "goal": "0", "unit": "findings", "met": fps == 0})
    res = ROOT / "bench" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "scan_accuracy.json").write_text(json.dumps(
        {"bench": "scan_accuracy", "rows": rows,
         "notes": "labelled sets in tests/desensitize/data (Faker zh_CN values in hand-written templates; "
                  "heldout templates never tuned against); per-entity figures under 'details'",
         "details": out}, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
