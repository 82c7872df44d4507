"""Masking throughput: our vectorised operators vs presidio-anonymizer, side by side.

One run over a synthetic government table (姓名, 联系电话, 身份证号; default 1,000,000
rows) on one core (Arrow's thread pool set to 1).  For each operator we time our
operator over every cell of a column, batch by batch as the streaming masker does,
and presidio-anonymizer's equivalent operator cell by cell
(``AnonymizerEngine.anonymize`` with one whole-cell ``RecognizerResult``) on a
subsample of ``--presidio-cells`` cells; Presidio's cells/s is extrapolated from that
subsample (stated in the output).  FF1 (fpe on ID numbers) values/s is reported too.

    .venv/bin/python bench/mask_table.py [--rows 1000000] [--presidio-cells 20000]

Prints a Markdown table and writes bench/results/mask_table.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from desensitize.keys import Keyring
from desensitize.operators import OpContext, apply_operator
from desensitize.operators.fpe import id_check_char, provinces

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国红梅玉兰海燕志强文博子涵浩然欣怡")
PREFIXES = ["138", "139", "137", "136", "135", "150", "151", "158", "186", "187", "188", "133", "153", "177", "199"]


def make_table(rows: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    s = np.array(SURNAMES)[rng.integers(0, len(SURNAMES), rows)]
    g1 = np.array(GIVEN)[rng.integers(0, len(GIVEN), rows)]
    g2 = np.where(rng.random(rows) < 0.6, np.array(GIVEN)[rng.integers(0, len(GIVEN), rows)], "")
    names = np.char.add(np.char.add(s, g1), g2)
    phones = np.char.add(np.array(PREFIXES)[rng.integers(0, len(PREFIXES), rows)],
                         np.char.zfill(rng.integers(0, 10**8, rows).astype(str), 8))
    provs = provinces()
    region = np.char.add(np.array(provs)[rng.integers(0, len(provs), rows)],
                         np.char.zfill(rng.integers(0, 10**4, rows).astype(str), 4))
    days = rng.integers(0, 365 * 80, rows).astype("timedelta64[D]") + np.datetime64("1940-01-01")
    dates = np.char.replace(np.datetime_as_string(days, unit="D"), "-", "")
    seq = np.char.zfill(rng.integers(0, 1000, rows).astype(str), 3)
    bodies = np.char.add(np.char.add(region, dates), seq)
    ids = [b + id_check_char(b) for b in bodies.tolist()]
    return pa.table({"姓名": pa.array(names.tolist()), "联系电话": pa.array(phones.tolist()),
                     "身份证号": pa.array(ids)})


OURS: list[tuple[str, str, str, str, dict[str, object]]] = [  # (label, column, entity, operator, params)
    ("mask", "联系电话", "PHONE_NUMBER", "mask", {}),
    ("mask (name)", "姓名", "PERSON", "mask", {}),
    ("redact", "身份证号", "CN_RESIDENT_ID", "redact", {}),
    ("hash", "身份证号", "CN_RESIDENT_ID", "hash", {}),
    ("fake", "姓名", "PERSON", "fake", {}),
]


def time_ours(table: pa.Table, keyring: Keyring, batch: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for label, col, entity, op, params in OURS:
        ctx = OpContext(keyring, entity, col)
        column = table.column(col)
        t0 = time.perf_counter()
        for b in column.chunks if len(column.chunks) > 1 else [column.combine_chunks()]:
            for start in range(0, len(b), batch):
                apply_operator(op, b.slice(start, batch), params, ctx)
        out[label] = len(column) / (time.perf_counter() - t0)
    return out


def time_ff1(table: pa.Table, keyring: Keyring, n: int) -> float:
    values = table.column("身份证号").slice(0, n).combine_chunks()
    t0 = time.perf_counter()
    apply_operator("fpe", values, {}, OpContext(keyring, "CN_RESIDENT_ID", "身份证号"))
    return n / (time.perf_counter() - t0)


def time_presidio(table: pa.Table, cells: int) -> dict[str, float]:
    from faker import Faker
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

    engine = AnonymizerEngine()  # type: ignore[no-untyped-call]  # presidio_anonymizer leaves __init__ unannotated
    faker = Faker("zh_CN")
    configs = {
        "mask": ("联系电话", "PHONE_NUMBER", OperatorConfig("mask", {"masking_char": "*", "chars_to_mask": 4,
                                                                   "from_end": False})),
        "mask (name)": ("姓名", "PERSON", OperatorConfig("mask", {"masking_char": "*", "chars_to_mask": 2,
                                                               "from_end": True})),
        "redact": ("身份证号", "CN_RESIDENT_ID", OperatorConfig("redact", {})),
        "hash": ("身份证号", "CN_RESIDENT_ID", OperatorConfig("hash", {"hash_type": "sha256"})),
        "fake": ("姓名", "PERSON", OperatorConfig("custom", {"lambda": lambda _x: faker.name()})),
    }
    out: dict[str, float] = {}
    for label, (col, entity, config) in configs.items():
        values = table.column(col).slice(0, cells).to_pylist()
        t0 = time.perf_counter()
        for v in values:
            engine.anonymize(text=v, analyzer_results=[RecognizerResult(entity, 0, len(v), 1.0)],
                             operators={entity: config})
        out[label] = len(values) / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--presidio-cells", type=int, default=20_000)
    ap.add_argument("--ff1-values", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=65_536)
    args = ap.parse_args()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    keyring = Keyring(os.urandom(32))

    t0 = time.perf_counter()
    table = make_table(args.rows)
    gen_s = time.perf_counter() - t0
    ours = time_ours(table, keyring, args.batch)
    ff1 = time_ff1(table, keyring, min(args.ff1_values, args.rows))
    presidio = time_presidio(table, min(args.presidio_cells, args.rows))

    rows = []
    for label, _col, _e, _op, _p in OURS:
        rows.append({"operator": label, "ours_cells_per_s": round(ours[label]),
                     "presidio_cells_per_s": round(presidio[label]),
                     "ratio": round(ours[label] / presidio[label], 1)})
    result = {
        "rows": args.rows, "cells_per_operator": args.rows, "batch": args.batch,
        "presidio_subsample_cells": min(args.presidio_cells, args.rows),
        "presidio_note": "presidio-anonymizer timed cell by cell on the subsample; cells/s extrapolated",
        "one_core": True, "generate_s": round(gen_s, 2), "operators": rows,
        "ff1_values_per_s": round(ff1), "ff1_values": min(args.ff1_values, args.rows),
        "goal": {"ratio_min": 50, "mask_redact_cells_per_s_min": 1_000_000},
        "python": platform.python_version(), "pyarrow": pa.__version__,
        "load_average_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
    }
    print(f"Masking throughput, {args.rows:,} rows, one core (Presidio on {result['presidio_subsample_cells']:,}"
          f" cells, extrapolated); load average {result['load_average_1m']} on {os.cpu_count()} CPUs\n")
    print("| operator | ours cells/s | presidio-anonymizer cells/s | ratio |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['operator']} | {r['ours_cells_per_s']:,} | {r['presidio_cells_per_s']:,} | {r['ratio']}x |")
    print(f"| fpe (FF1, CN_RESIDENT_ID) | {result['ff1_values_per_s']:,} values/s | — | — |")
    out = Path(__file__).resolve().parent / "results" / "mask_table.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")


if __name__ == "__main__":
    main()
