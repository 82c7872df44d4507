"""`make bench` (bench/run_all.py): discovery, --quick detection, tolerant reading, the table."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run_all", REPO / "bench" / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_run_all", module)  # dataclasses look the module up
    spec.loader.exec_module(module)
    bench = tmp_path / "bench"
    (bench / "results").mkdir(parents=True)
    monkeypatch.setattr(module, "BENCH", bench)
    monkeypatch.setattr(module, "RESULTS", bench / "results")
    monkeypatch.setattr(module, "REPO", tmp_path)
    return module


WRITER = """
import argparse, json, pathlib, sys
p = argparse.ArgumentParser(); p.add_argument("--quick", action="store_true"); a = p.parse_args()
rows = [{{"metric": "m", "ours": 200.0, "anchor": 2.0, "ratio": 100.0, "goal": ">= 100x", "unit": "rows/s",
          "met": True, "quick": a.quick}}]
out = pathlib.Path(sys.argv[0]).parent / "results" / "{name}.json"
out.write_text(json.dumps({{"bench": "{name}", "rows": rows, "notes": "quick=" + str(a.quick)}}))
"""


def test_runs_every_bench_and_writes_one_table(run_all: ModuleType, tmp_path: Path) -> None:
    bench = run_all.BENCH
    (bench / "good.py").write_text(WRITER.format(name="good"))
    (bench / "crash.py").write_text("raise SystemExit(3)")
    (bench / "silent.py").write_text("print('no json')")
    (bench / "slow.py").write_text("import time; time.sleep(30)")
    (bench / "run_all.py").write_text("raise SystemExit('must not run itself')")
    out = tmp_path / "RESULTS.md"
    code = run_all.main(["--timeout", "3", "--out", str(out)])
    text = out.read_text()
    assert code == 1  # not every bench ran
    assert "| good | m | 200 rows/s | 2 rows/s | 100 | >= 100x | yes |" in text
    assert "bench/run_all.py --quick" in text
    assert "quick=True" in text
    assert "failed (exit 3)" in text and "no results" in text and "timeout after 3 s" in text
    assert "must not run itself" not in text


def test_stale_results_are_not_reported(run_all: ModuleType) -> None:
    bench = run_all.BENCH
    (bench / "b.py").write_text("pass")
    (bench / "results" / "b.json").write_text(json.dumps({"bench": "b", "rows": [{"metric": "old", "ours": 1}]}))
    old = bench / "results" / "b.json"
    import os

    os.utime(old, (1_000_000_000, 1_000_000_000))  # written long before this run
    outcome = run_all.run_one(bench / "b.py", quick=True, timeout=30)
    assert outcome.rows == [] and outcome.status.startswith("no results")
    assert old.exists()  # left alone: the runner never deletes a bench's files


@pytest.mark.parametrize(
    ("raw", "metric", "ours", "ratio"),
    [
        ({"bench": "x", "rows": [{"metric": "a", "ours": 4, "anchor": 2}]}, "a", 4, 2.0),
        ([{"name": "a", "value": 3, "baseline": 6, "target": "x"}], "a", 3, 0.5),
        ({"rows": {"a": {"value": 1, "ratio": 9}}}, "a", 1, 9),
        ({"bench": "x", "a": 5}, "a", 5, None),
        ({"results": [{"Metric": "a", "Ours": 2, "Anchor": 0}]}, "a", 2, None),
        ({"rows": 1000, "operators": [{"operator": "mask", "ours_cells_per_s": 8, "presidio_cells_per_s": 2,
                                        "ratio": 4.0}]}, "operators: mask", 8, 4.0),
    ],
)
def test_normalize_accepts_the_shapes_benches_write(run_all: ModuleType, raw: dict[str, Any], metric: str, ours: int, ratio: float | None) -> None:
    rows, _ = run_all.normalize(raw, "x")
    assert rows[0]["metric"] == metric and rows[0]["ours"] == ours and rows[0]["ratio"] == ratio


def test_quick_flag_detected_from_source(run_all: ModuleType) -> None:
    bench = run_all.BENCH
    (bench / "q.py").write_text("import argparse; argparse.ArgumentParser().add_argument('--quick')")
    (bench / "n.py").write_text("print(1)")
    assert run_all.supports_quick(bench / "q.py") and not run_all.supports_quick(bench / "n.py")


def test_unknown_name_is_an_error(run_all: ModuleType) -> None:
    with pytest.raises(SystemExit, match="no benchmark named nope"):
        run_all.discover(["nope"])
    assert sys.executable


def test_collect_tabulates_existing_results_without_running(run_all: ModuleType, tmp_path: Path) -> None:
    bench = run_all.BENCH
    (bench / "never.py").write_text("raise SystemExit('must not run')")
    (bench / "results" / "never.json").write_text(json.dumps(
        {"bench": "never", "rows": [{"metric": "x", "ours": 5, "anchor": 1, "goal": ">= 2x", "met": True}]}))
    (bench / "absent.py").write_text("pass")
    out = tmp_path / "R.md"
    assert run_all.main(["--collect", "--out", str(out)]) == 1  # absent has no results file
    text = out.read_text()
    assert "| never | x | 5 | 1 | 5 | >= 2x | yes |" in text
    assert "must not run" not in text and "no results file" in text
