"""Run every benchmark in bench/ and write one Markdown table, bench/RESULTS.md (`make bench`).

Each ``bench/<name>.py`` (except this file) runs in its own subprocess with a timeout,
with ``--quick`` when the script accepts it (its source names the flag), and is expected to
write ``bench/results/<name>.json`` in the schema of bench/README.md. A benchmark that
fails, times out or writes no results still gets a row saying so, so the table never hides
a missing figure. Exit status: 0 when every benchmark ran, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
SELF = Path(__file__).name
COLUMNS = ("benchmark", "metric", "ours", "anchor", "ratio", "goal", "met?")


@dataclass
class Outcome:
    name: str
    status: str  # ok | failed (exit N) | timeout | no results
    seconds: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""
    tail: str = ""


def discover(only: list[str] | None = None) -> list[Path]:
    scripts = sorted(p for p in BENCH.glob("*.py") if p.name != SELF and not p.name.startswith("_"))
    if only:
        wanted = {o.removesuffix(".py") for o in only}
        unknown = wanted - {p.stem for p in scripts}
        if unknown:
            raise SystemExit(f"error: no benchmark named {', '.join(sorted(unknown))} in bench/")
        scripts = [p for p in scripts if p.stem in wanted]
    return scripts


def supports_quick(script: Path) -> bool:
    return "--quick" in script.read_text(encoding="utf-8", errors="replace")


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value == 0:
            return "0"
        magnitude = abs(value)
        if magnitude >= 1000:
            return f"{value:,.0f}"
        if magnitude >= 100:
            return f"{value:.0f}"
        if magnitude >= 10:
            return f"{value:.1f}"
        if magnitude >= 0.01:
            return f"{value:.3g}"
        return f"{value:.2e}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _with_unit(value: Any, unit: str | None) -> str:
    text = _fmt(value)
    return f"{text} {unit}" if unit and text != "—" and not isinstance(value, bool) else text


def normalize(raw: Any, name: str) -> tuple[list[dict[str, Any]], str]:
    """Rows and notes from a results file, tolerating the shapes benches actually write.

    Accepted: the schema of bench/README.md; a bare list of rows; ``{"rows": {metric: {...}}}``;
    a flat ``{metric: number}`` object. Row keys are matched case-insensitively with common
    synonyms (``value``/``ours``, ``baseline``/``anchor``, ``target``/``goal``).
    """
    notes = ""
    if isinstance(raw, dict):
        notes = str(raw.get("notes") or raw.get("note") or "")
        rows: Any = raw.get("rows", raw.get("results", raw.get("metrics")))
        if rows is None:
            rows = [{"metric": k, "ours": v} for k, v in raw.items() if k not in {"bench", "notes", "note"}]
    else:
        rows = raw
    if isinstance(rows, dict):
        rows = [{"metric": k, **(v if isinstance(v, dict) else {"ours": v})} for k, v in rows.items()]
    if not isinstance(rows, list) and isinstance(raw, dict):
        rows = _rows_from_lists(raw)
    if not isinstance(rows, list) or not rows:
        return [], f"unreadable results shape in {name}.json (see bench/README.md for the schema)"
    synonyms = {
        "metric": ("metric", "name", "what", "case"),
        "ours": ("ours", "value", "result", "quanguard"),
        "anchor": ("anchor", "baseline", "reference", "theirs"),
        "ratio": ("ratio",),
        "goal": ("goal", "target"),
        "unit": ("unit", "units"),
        "met": ("met", "ok", "pass", "passed"),
    }
    out: list[dict[str, Any]] = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        lower = {str(k).lower(): v for k, v in row.items()}
        norm = {key: next((lower[s] for s in names if s in lower), None) for key, names in synonyms.items()}
        if norm["ratio"] is None and isinstance(norm["ours"], int | float) and isinstance(norm["anchor"], int | float):
            norm["ratio"] = norm["ours"] / norm["anchor"] if norm["anchor"] else None
        out.append(norm)
    return out, notes


def _rows_from_lists(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Last resort for a bench that wrote its own shape: every list of objects becomes rows,
    ``ours_*`` keys the figure, ``anchor``/``baseline``/``presidio``/``plain`` keys the anchor."""
    anchors = ("anchor", "baseline", "presidio", "plain", "theirs", "duckdb")
    rows: list[dict[str, Any]] = []
    for key, value in raw.items():
        if not (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
            continue
        for item in value:
            label = next((str(v) for v in item.values() if isinstance(v, str)), key)
            ours_key = next((k for k in item if k.lower().startswith("ours")), None)
            anchor_key = next((k for k in item if any(a in k.lower() for a in anchors)), None)
            if ours_key is None:
                continue
            unit = ours_key[len("ours"):].strip("_").replace("_per_s", "/s").replace("_", " ")
            rows.append({"metric": f"{key}: {label}", "ours": item[ours_key],
                         "anchor": item.get(anchor_key) if anchor_key else None,
                         "ratio": item.get("ratio"), "unit": unit})
    return rows


def run_one(script: Path, *, quick: bool, timeout: float) -> Outcome:
    name = script.stem
    result_file = RESULTS / f"{name}.json"
    started = time.time()  # a results file older than this run is stale and never reported
    cmd = [sys.executable, str(script)]
    if quick and supports_quick(script):
        cmd.append("--quick")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-600:] if isinstance(exc.stderr, bytes) else str(exc.stderr or "")[-600:]
        return Outcome(name, f"timeout after {timeout:.0f} s", time.monotonic() - start, tail=str(tail))
    elapsed = time.monotonic() - start
    tail = (proc.stderr or proc.stdout or "")[-600:]
    if proc.returncode != 0:
        outcome = Outcome(name, f"failed (exit {proc.returncode})", elapsed, tail=tail)
    else:
        outcome = Outcome(name, "ok", elapsed, tail=tail)
    fresh = result_file.is_file() and result_file.stat().st_mtime >= started - 1.0
    if fresh:
        try:
            outcome.rows, outcome.notes = normalize(json.loads(result_file.read_text(encoding="utf-8")), name)
        except (OSError, ValueError) as exc:
            outcome.status = f"bad results file ({exc})"
    elif proc.returncode == 0:
        outcome.status = f"no results (bench/results/{name}.json not written by this run)"
    return outcome


def collect_one(script: Path) -> Outcome:
    """Read the results file a bench's owner left (``--collect``: nothing is run)."""
    name = script.stem
    result_file = RESULTS / f"{name}.json"
    if not result_file.is_file():
        return Outcome(name, "no results file", 0.0)
    written = datetime.fromtimestamp(result_file.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
    outcome = Outcome(name, "ok", 0.0)
    try:
        outcome.rows, outcome.notes = normalize(json.loads(result_file.read_text(encoding="utf-8")), name)
    except (OSError, ValueError) as exc:
        outcome.status = f"bad results file ({exc})"
    outcome.notes = f"(results file of {written}) {outcome.notes}".strip()
    return outcome


def render(outcomes: list[Outcome], *, quick: bool, collected: bool = False) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    how = "--collect" if collected else ("--quick" if quick else "--full")
    lines = [
        "# Benchmark results",
        "",
        (
            f"Generated by `bench/run_all.py {how}` on {stamp}, "
            f"{platform.machine()} with {os.cpu_count()} CPUs, Python {platform.python_version()}. "
            "Each figure is one run; *ratio* is ours ÷ anchor measured in the same run "
            "(see each bench's notes for direction). Do not edit by hand."
        ),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for o in outcomes:
        if not o.rows:
            lines.append(f"| {o.name} | *{_fmt(o.status)}* | — | — | — | — | no |")
            continue
        for row in o.rows:
            met = row["met"]
            cells = [
                o.name,
                _fmt(row["metric"]),
                _with_unit(row["ours"], row["unit"]),
                _with_unit(row["anchor"], row["unit"]),
                _fmt(row["ratio"]),
                _fmt(row["goal"]),
                "—" if met is None else ("yes" if met else "**no**"),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Runs", "", "| benchmark | status | seconds | notes |", "|---|---|---|---|"]
    for o in outcomes:
        lines.append(f"| {o.name} | {_fmt(o.status)} | {o.seconds:.1f} | {_fmt(o.notes) if o.notes else ''} |")
    failed = [o for o in outcomes if o.status != "ok"]
    if failed:
        lines += ["", "## Failures", ""]
        for o in failed:
            lines += [f"### {o.name}: {o.status}", "", "```", o.tail.strip()[-600:], "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only these benchmarks (file stems)")
    parser.add_argument("--full", action="store_true", help="do not pass --quick (full sizes; slow)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per benchmark (default 900)")
    parser.add_argument("--collect", action="store_true",
                        help="run nothing: tabulate the results files the benches last wrote")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args(argv)
    quick = not args.full
    RESULTS.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for script in discover(args.names):
        if args.collect:
            outcomes.append(collect_one(script))
            continue
        print(f"running {script.name} ...", file=sys.stderr, flush=True)
        outcome = run_one(script, quick=quick, timeout=args.timeout)
        print(f"  {outcome.status} in {outcome.seconds:.1f} s", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    text = render(outcomes, quick=quick, collected=args.collect)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, args.out)
    print(text)
    return 0 if all(o.status == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
