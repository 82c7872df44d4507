"""Text scan throughput (characters/s): our TextScanner (Presidio AnalyzerEngine with the
Chinese registry, character-window context, chunking, cross-entity resolution) vs the
anchor, a bare Presidio ``AnalyzerEngine`` with the same recognizers called once per text
(no chunking, no resolution), on the same texts: the labelled 12345-ticket/form records
and one long document (policy prose with tickets mixed in, ~200k characters) that the
anchor has to take in one piece.

    python bench/scan_text.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    from desensitize.text_scan import TextScanner, build_analyzer

    data = ROOT / "tests" / "desensitize" / "data" / "labelled_heldout.jsonl"
    records = [json.loads(line)["text"] for line in data.read_text(encoding="utf-8").splitlines() if line]
    if args.quick:
        records = records[:150]
    prose = [r for r in records if "1" in r]
    long_doc = "\n".join((prose * 50)[: (300 if args.quick else 3000)])
    ours = TextScanner()
    anchor = build_analyzer()
    ours.scan("预热 13812345678 张三")
    anchor.analyze("预热 13812345678 张三", language="zh")  # type: ignore[attr-defined]

    from desensitize.nlp import segment

    def timed(fn, texts):  # type: ignore[no-untyped-def]
        segment.cache_clear()  # neither side profits from the other's jieba cache
        t0 = time.perf_counter()
        found = sum(len(fn(t)) for t in texts)
        return sum(len(t) for t in texts) / (time.perf_counter() - t0), found

    rows = []
    for label, texts in (("short records", records), ("long document", [long_doc])):
        o, of = timed(ours.scan, texts)
        a, af = timed(lambda t: anchor.analyze(t, language="zh"), texts)  # type: ignore[attr-defined]
        rows.append({"metric": f"text scan chars/s, {label} ({sum(map(len, texts)):,} chars)",
                     "ours": round(o, 1), "anchor": round(a, 1), "ratio": round(o / a, 2),
                     "goal": "report", "unit": "chars/s", "met": True,
                     "findings_ours": of, "findings_anchor": af})
    print("\n### text scan\n\n| input | ours chars/s | bare AnalyzerEngine chars/s | ratio |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['metric']} | {r['ours']:,.0f} | {r['anchor']:,.0f} | {r['ratio']:.2f} |")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scan_text.json").write_text(json.dumps(
        {"bench": "scan_text", "rows": rows,
         "notes": "one run on shared cores; the anchor is Presidio AnalyzerEngine with the same recognizers"},
        indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
