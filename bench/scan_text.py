"""Text scan throughput (characters/s): our TextScanner (cheap candidate windows per entity
family, then the recognizers of a Presidio AnalyzerEngine with the Chinese registry called
directly, character-window context, chunking, cross-entity resolution) vs the anchor, a bare Presidio ``AnalyzerEngine`` with
the same recognizers called once per text (no windows, no chunking, no resolution), on the
same texts in the same run:

* policy prose: 40,000+ characters of government prose (``tests/desensitize/data/prose_gen``),
  the "typical government text" of issue 12, one document;
* short records: the labelled 12345-ticket / form records, ours through ``scan_many``
  (the batch entry point the API, masking and table scanner use) and through one
  ``scan`` per record; the anchor one ``analyze`` per record (Presidio's
  ``BatchAnalyzerEngine`` does the same);
* long document: about 3,000 distinct 12345-ticket and form records (300 with ``--quick``),
  generated from the held-out templates with a seed of their own (names, phones, IDs,
  cards, plates, addresses; no record repeated, so no cache of either side is fed by
  repetition), one per line, one call.

Both CPU time of this process (``time.process_time``: what one core delivers, little
disturbed by other processes on shared cores) and wall time are reported; the goals
(>= 100,000 characters/s on one core, >= 3x the anchor) are judged on CPU time, and the
load average at the start is written to the notes.

    python bench/scan_text.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "desensitize" / "data"))


def timed(fn: Callable[[str], list[Any]], texts: list[str], repeat: int, *,
          batch: Callable[[list[str]], list[list[Any]]] | None = None) -> tuple[float, float, int]:
    """Best of ``repeat`` runs: (CPU chars/s, wall chars/s, findings); ``batch`` scans
    all texts in one call instead of ``fn`` per text."""
    from desensitize.name_candidates import finder
    from desensitize.nlp import clear_caches

    size = sum(map(len, texts))
    best_cpu = best_wall = 0.0
    found = 0
    for _ in range(repeat):
        # neither side profits from the other's (or its last run's) memoised work
        clear_caches()
        finder().clear_memo()
        c0, t0 = time.process_time(), time.perf_counter()
        found = sum(map(len, batch(texts))) if batch else sum(len(fn(t)) for t in texts)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        best_cpu = max(best_cpu, size / cpu if cpu else 0.0)
        best_wall = max(best_wall, size / wall if wall else 0.0)
    return best_cpu, best_wall, found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    import pii_gen
    import prose_gen

    from desensitize.text_scan import TextScanner, build_analyzer

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    data = ROOT / "tests" / "desensitize" / "data" / "labelled_heldout.jsonl"
    records = [json.loads(line)["text"] for line in data.read_text(encoding="utf-8").splitlines() if line]
    if args.quick:
        records = records[:150]
    prose = "\n".join(prose_gen.policy_prose())
    generated = [r["text"] for r in pii_gen.labelled("heldout", 300 if args.quick else 3000, seed=2026)]
    long_doc = "\n".join(dict.fromkeys(t for t in generated if any(c.isdigit() for c in t)))
    ours = TextScanner()
    anchor = build_analyzer()
    ours.scan(prose[:3000])
    anchor.analyze(prose[:3000], language="zh")  # type: ignore[attr-defined]

    rows: list[dict[str, Any]] = []
    repeat = 2 if args.quick else 3
    def many(texts: list[str]) -> list[list[Any]]:
        return list(ours.scan_many(texts))

    for label, texts, goal, batch in (
            ("policy prose", [prose], True, None),
            ("short records via scan_many (batch entry point)", records, True, many),
            ("short records via scan() per record", records, False, None),
            ("long document", [long_doc], True, None)):
        oc, ow, of = timed(ours.scan, texts, repeat, batch=batch)
        ac, aw, af = timed(lambda t: anchor.analyze(t, language="zh"), texts, repeat)  # type: ignore[attr-defined]
        size = sum(map(len, texts))
        rows.append({"metric": f"text scan chars/s on one core (CPU time), {label} ({size:,} chars), "
                               "ratio ours/AnalyzerEngine",
                     "ours": round(oc), "anchor": round(ac), "ratio": round(oc / ac, 2),
                     "goal": ">= 100,000 and >= 3x" if goal else "report", "unit": "chars/s",
                     "met": (oc >= 100_000 and oc >= 3 * ac) if goal else None,
                     "wall_ours": round(ow), "wall_anchor": round(aw), "wall_ratio": round(ow / aw, 2),
                     "findings_ours": of, "findings_anchor": af})
    print(f"\n### text scan (load average at start: {load:.1f})\n" if load is not None else "\n### text scan\n")
    print("| input | ours CPU chars/s | AnalyzerEngine CPU chars/s | ratio | ours wall | anchor wall | wall ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['metric'].split(', ')[1]} | {r['ours']:,} | {r['anchor']:,} | {r['ratio']:.2f} | "
              f"{r['wall_ours']:,} | {r['wall_anchor']:,} | {r['wall_ratio']:.2f} |")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scan_text.json").write_text(json.dumps(
        {"bench": "scan_text", "rows": rows,
         "notes": f"one run, best of {repeat}; CPU time of this process (one core) and wall time; "
                  f"load average at start {load:.1f} on shared cores; the anchor is Presidio "
                  "AnalyzerEngine with the same recognizers on the whole text"},
        indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
