"""Big-table masking: Spark ``local[2]`` vs the single-process path, side by side (issue 15).

One synthetic government table (default 5,000,000 rows × 12 columns, Parquet, row groups
of 131,072 rows) is masked twice with the same keys and profile:

* **single**: ``quanguard.usecases.mask.mask_file`` (sampled scan → plan → streaming masker
  → Parquet file), in one process;
* **spark**: ``quanguard.usecases.spark.mask`` on ``local[2]`` (sampled scan on Spark → the same
  plan → the same masker in ``mapInArrow`` → a Parquet folder).

Each mode runs in its own subprocess; a sampler thread records the peak resident memory of
the driver (the Python process) and, for Spark, of the JVM (which in local mode also hosts
the executors) and of the Python workers. Rows/s is rows ÷ wall time of the job (Spark
start-up excluded and reported separately). One run; the machine's 2 cores are shared.

    python bench/spark_table.py [--rows 5000000] [--quick]

Prints a Markdown table and writes bench/results/spark_table.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国红梅玉海燕志文博子涵浩然欣怡")
DISTRICTS = ["历下区", "市中区", "槐荫区", "天桥区", "历城区", "长清区", "章丘区", "济阳区", "莱芜区"]
ROADS = ["经十路", "泉城路", "历山路", "解放路", "和平路", "山大路", "舜耕路", "工业南路"]
PREFIXES = ["138", "139", "137", "150", "151", "158", "186", "187", "188", "133", "177", "199"]


def make_table(rows: int, seed: int = 15) -> Any:
    """12 columns: 编号 姓名 身份证号 手机号 邮箱 性别 年龄 区县 住址 收入 登记日期 备注."""
    import numpy as np
    import pyarrow as pa

    from desensitize.operators.fpe import id_check_char, provinces

    rng = np.random.default_rng(seed)

    def pick(options: Sequence[str]) -> Any:
        return np.array(options)[rng.integers(0, len(options), rows)]

    names = np.char.add(np.char.add(pick(SURNAMES), pick(GIVEN)),
                        np.where(rng.random(rows) < 0.6, pick(GIVEN), ""))
    phones = np.char.add(pick(PREFIXES), np.char.zfill(rng.integers(0, 10**8, rows).astype(str), 8))
    region = np.char.add(pick(provinces()), np.char.zfill(rng.integers(100, 10**4, rows).astype(str), 4))
    days = rng.integers(0, 365 * 70, rows).astype("timedelta64[D]") + np.datetime64("1945-01-01")
    dates = np.char.replace(np.datetime_as_string(days, unit="D"), "-", "")
    bodies = np.char.add(np.char.add(region, dates),
                         np.char.zfill(rng.integers(0, 1000, rows).astype(str), 3)).tolist()
    ids = [b + id_check_char(b) for b in bodies]
    seq = np.arange(rows)
    emails = np.char.add(np.char.add("u", seq.astype(str)), "@mail.example.cn")
    address = np.char.add(np.char.add(np.char.add("济南市", pick(DISTRICTS)), pick(ROADS)),
                          np.char.add(rng.integers(1, 300, rows).astype(str), "号"))
    reg = rng.integers(0, 3650, rows).astype("timedelta64[D]") + np.datetime64("2015-01-01")
    return pa.table({
        "编号": np.char.add("R", np.char.zfill(seq.astype(str), 9)).tolist(),
        "姓名": names.tolist(), "身份证号": ids, "手机号": phones.tolist(), "邮箱": emails.tolist(),
        "性别": pick(["男", "女"]).tolist(), "年龄": rng.integers(18, 90, rows).astype(str).tolist(),
        "区县": pick(DISTRICTS).tolist(), "住址": address.tolist(),
        "收入": np.round(rng.uniform(2000, 30000, rows), 2),
        "登记日期": np.datetime_as_string(reg, unit="D").tolist(),
        "备注": pick(["按期办理", "已核验", "待补充材料", ""]).tolist(),
    })


def data_file(rows: int, folder: Path) -> Path:
    import pyarrow.parquet as pq

    path = folder / f"people_{rows}.parquet"
    if not path.exists():
        tmp = path.with_suffix(".part")
        chunk = 500_000
        writer = None
        for start in range(0, rows, chunk):
            table = make_table(min(chunk, rows - start), seed=15 + start)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=131_072)
        assert writer is not None
        writer.close()
        tmp.rename(path)
    return path


class PeakSampler:
    """Peak RSS (bytes) of this process, the JVM child and the Python workers."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self.peak = {"driver": 0, "jvm": 0, "workers": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                self.peak["driver"] = max(self.peak["driver"], self._me.memory_info().rss)
                jvm = workers = 0
                for child in self._me.children(recursive=True):
                    try:
                        rss = child.memory_info().rss
                        name = child.name()
                    except psutil.Error:
                        continue
                    if "java" in name:
                        jvm += rss
                    else:
                        workers += rss
                self.peak["jvm"] = max(self.peak["jvm"], jvm)
                self.peak["workers"] = max(self.peak["workers"], workers)
            except psutil.Error:
                pass
            self._stop.wait(0.2)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_mode(mode: str, src: Path, workdir: Path) -> dict[str, Any]:
    """Run one mode in this process and return its figures (called in a subprocess)."""
    from quanguard.auth import Principal
    from quanguard.config import load_settings
    from quanguard.container import build_container

    settings = load_settings(db_url=f"sqlite:///{workdir / f'{mode}.db'}",
                             policy_dir=ROOT / "policies", key_dir=workdir / "keys",
                             data_dir=workdir)
    container = build_container(settings)
    who = Principal(id="bench", name="bench", role="manager", org="市大数据局")
    out: dict[str, Any] = {"mode": mode}
    with PeakSampler() as sampler:
        if mode == "single":
            from quanguard.usecases.mask import mask_file

            t0 = time.perf_counter()
            res = mask_file(container, who, str(src), str(workdir / "single_out.parquet"))
            out["seconds"] = time.perf_counter() - t0
            out["rows"] = res.result.stats.rows
            out["cells_masked"] = res.result.stats.cells
        else:
            from quanguard.spark import get_session
            from quanguard.usecases.spark import mask

            t0 = time.perf_counter()
            spark = get_session("local[2]", app_name="quanguard-bench")
            spark.sparkContext.setLogLevel("ERROR")
            out["startup_seconds"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            spark_res = mask(container, who, str(src), str(workdir / "spark_out.parquet"), spark=spark)
            out["seconds"] = time.perf_counter() - t1
            out["rows"] = spark_res.rows_out
            out["cells_masked"] = spark_res.cells_masked
            out["partitions"] = spark_res.partitions
            spark.stop()
    out["peak_rss"] = sampler.peak
    container.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--quick", action="store_true", help="500,000 rows")
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "quanguard-bench-spark")
    ap.add_argument("--mode", choices=["single", "spark"], help=argparse.SUPPRESS)
    ap.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:  # child
        print(json.dumps(run_mode(args.mode, args.src, args.workdir)))
        return
    rows = 500_000 if args.quick else args.rows
    args.data.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    src = data_file(rows, args.data)
    gen_s = time.perf_counter() - t0
    results = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for mode in ("single", "spark"):
        with tempfile.TemporaryDirectory(dir=args.data) as wd:
            proc = subprocess.run([sys.executable, __file__, "--mode", mode, "--src", str(src),
                                   "--workdir", wd], capture_output=True, text=True, env=env,
                                  check=False)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr[-4000:])
                raise SystemExit(f"{mode} run failed (exit {proc.returncode})")
            results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    single, spark = results["single"], results["spark"]
    mb = 1024 * 1024
    s_rate = single["rows"] / single["seconds"]
    p_rate = spark["rows"] / spark["seconds"]
    table = [
        {"metric": f"mask {rows:,} rows × 12 columns: Spark local[2] rows/s vs single-process "
                   "rows/s (ours = Spark, anchor = single; ratio Spark/single)",
         "ours": round(p_rate), "anchor": round(s_rate), "ratio": round(p_rate / s_rate, 3),
         "goal": None, "unit": "rows/s", "met": None},
        {"metric": "driver peak RSS (Python driver): Spark vs single-process",
         "ours": round(spark["peak_rss"]["driver"] / mb), "anchor":
             round(single["peak_rss"]["driver"] / mb),
         "ratio": round(spark["peak_rss"]["driver"] / single["peak_rss"]["driver"], 3),
         "goal": None, "unit": "MB", "met": None},
        {"metric": "Spark JVM peak RSS (driver JVM + local executors) / Python workers peak RSS",
         "ours": f"{spark['peak_rss']['jvm'] / mb:,.0f} / {spark['peak_rss']['workers'] / mb:,.0f}",
         "anchor": None, "ratio": None, "goal": None, "unit": "MB", "met": None},
        {"metric": "Spark session start-up (not in rows/s)", "ours": round(spark["startup_seconds"], 1),
         "anchor": None, "ratio": None, "goal": None, "unit": "s", "met": None},
    ]
    notes = (f"{rows:,} rows × 12 columns Parquet ({src.stat().st_size / mb:,.0f} MB, generated in "
             f"{gen_s:.0f} s), profile 共享, same keys; single {single['seconds']:.1f} s, Spark "
             f"{spark['seconds']:.1f} s on {spark['partitions']} partitions; cells masked "
             f"single {single['cells_masked']:,} / Spark {spark['cells_masked']:,}; one run on "
             "2 cores shared with other work")
    print("| metric | Spark | single | ratio |\n|---|---|---|---|")
    for r in table:
        print(f"| {r['metric']} | {r['ours']} {r['unit']} | {r['anchor'] or '—'} | {r['ratio'] or '—'} |")
    print(notes)
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "spark_table.json").write_text(json.dumps(
        {"bench": "spark_table", "rows": table, "notes": notes, "raw": results},
        ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
