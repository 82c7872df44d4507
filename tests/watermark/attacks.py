"""Attacks on marked tables, shared by the robustness tests and the bench.

Each attack is a function ``(table, rng) -> table`` on string tables; none knows the key.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

Attack = Callable[[pa.Table, random.Random], pa.Table]


def keep_fraction(table: pa.Table, rng: random.Random, fraction: float = 0.10) -> pa.Table:
    """Keep a random ``fraction`` of the rows (in random order)."""
    n = table.num_rows
    idx = rng.sample(range(n), max(1, int(n * fraction)))
    return table.take(pa.array(idx))


def shuffle(table: pa.Table, rng: random.Random) -> pa.Table:
    """Shuffle rows and columns."""
    idx = list(range(table.num_rows))
    rng.shuffle(idx)
    names = list(table.column_names)
    rng.shuffle(names)
    return table.take(pa.array(idx)).select(names)


def drop_marked_but_one(marked: tuple[str, ...]) -> Attack:
    """Drop every marked column except one (chosen at random)."""
    def attack(table: pa.Table, rng: random.Random) -> pa.Table:
        present = [c for c in marked if c in table.column_names]
        keep = rng.choice(present)
        return table.drop_columns([c for c in present if c != keep])
    return attack


def _bump_last_digit(text: str, up: bool) -> str:
    # ±1 in the last written digit, as arithmetic on the decimal (carries allowed).
    from decimal import Decimal

    d = Decimal(text)
    ulp = Decimal(1).scaleb(int(d.as_tuple().exponent))
    out = d + ulp if up else d - ulp
    return format(out, "f")


def _change_values(columns: tuple[str, ...], share: float,
                   change: Callable[[str, random.Random], str]) -> Attack:
    """An attack that replaces ``share`` of the non-empty values of ``columns`` (the ones
    present) by ``change(value, rng)``."""
    def attack(table: pa.Table, rng: random.Random) -> pa.Table:
        for name in columns:
            if name not in table.column_names:
                continue
            values = table.column(name).to_pylist()
            for i, v in enumerate(values):
                if v and rng.random() < share:
                    values[i] = change(v, rng)
            pos = table.column_names.index(name)
            table = table.set_column(pos, name, pa.array(values, type=pa.string()))
        return table
    return attack


def perturb(columns: tuple[str, ...], share: float = 0.30) -> Attack:
    """Change ``share`` of the values of ``columns`` by ±1 in the last digit."""
    return _change_values(columns, share, lambda v, rng: _bump_last_digit(v, rng.random() < 0.5))


def csv_xlsx_csv(table: pa.Table, rng: random.Random) -> pa.Table:
    """Write CSV, load it as a spreadsheet would (numbers become numbers), save XLSX,
    read the XLSX back and write CSV again."""
    import openpyxl

    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    buf.seek(0)
    rows = pacsv.read_csv(buf, convert_options=pacsv.ConvertOptions(
        column_types={n: pa.string() for n in table.column_names})).to_pylist()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(table.column_names)
    for row in rows:
        ws.append([_as_spreadsheet_value(row[n]) for n in table.column_names])
    xbuf = io.BytesIO()
    wb.save(xbuf)
    xbuf.seek(0)
    wb2 = openpyxl.load_workbook(xbuf, read_only=True)
    it = wb2.active.iter_rows(values_only=True)
    header = [str(h) for h in next(it)]
    cols: dict[str, list[str | None]] = {h: [] for h in header}
    for row in it:
        for h, v in zip(header, row, strict=True):
            cols[h].append(None if v is None else str(v))
    wb2.close()
    out = pa.table({h: pa.array(v, type=pa.string()) for h, v in cols.items()})
    cbuf = io.BytesIO()
    pacsv.write_csv(out, cbuf)
    cbuf.seek(0)
    return pacsv.read_csv(cbuf, convert_options=pacsv.ConvertOptions(
        column_types={n: pa.string() for n in header}))


def _as_spreadsheet_value(v: str | None) -> object:
    # What a spreadsheet does on import: numbers become numbers.
    if v is None:
        return None
    try:
        f = float(v)
    except ValueError:
        return v
    if f.is_integer() and "." not in v and "e" not in v.lower():
        return int(f)
    return f


def all_together(marked: tuple[str, ...], numeric: tuple[str, ...]) -> Attack:
    """Every attack above, one after the other."""
    drop = drop_marked_but_one(marked)
    bump = perturb(numeric)

    def attack(table: pa.Table, rng: random.Random) -> pa.Table:
        table = keep_fraction(table, rng)
        table = shuffle(table, rng)
        table = drop(table, rng)
        table = bump(table, rng)
        return csv_xlsx_csv(table, rng)
    return attack


def sample_table(n: int, seed: int = 1, *, with_id: bool = True) -> pa.Table:
    """A people/finance table: id, masked PII, three measures, an age and a date."""
    r = np.random.default_rng(seed)
    cols: dict[str, pa.Array] = {}
    if with_id:
        cols["id"] = pa.array([f"R{i:07d}" for i in range(n)])
    surname = np.array(list("张王李赵刘陈杨黄"))
    cols["name"] = pa.array([s + "*" for s in surname[r.integers(0, len(surname), n)]])
    cols["phone"] = pa.array([f"1{a}****{b:04d}" for a, b in
                              zip(r.integers(30, 99, n), r.integers(0, 10000, n), strict=True)])
    cols["income"] = pa.array([f"{v:.2f}" for v in r.uniform(1000, 90000, n)])
    cols["area"] = pa.array([f"{v:.1f}" for v in r.uniform(30, 300, n)])
    cols["tax"] = pa.array([str(v) for v in r.integers(100, 99999, n)])
    cols["age"] = pa.array([str(v) for v in r.integers(18, 90, n)])
    cols["district"] = pa.array(list(np.array(["历下", "市中", "槐荫", "天桥", "历城"])[
        r.integers(0, 5, n)]))
    cols["signup_date"] = pa.array([f"2024-{m:02d}-{d:02d}" for m, d in
                                    zip(r.integers(1, 13, n), r.integers(1, 29, n),
                                        strict=True)])
    return pa.table(cols)


def numeric_columns(table: pa.Table) -> tuple[str, ...]:
    return tuple(c for c in ("income", "area", "tax") if c in table.column_names)


def is_numeric_text(arr: pa.ChunkedArray) -> bool:
    return bool(pc.all(pc.match_substring_regex(arr, r"^-?[0-9]+(\.[0-9]+)?$")).as_py())


# -- issue 17: what leakers actually do ------------------------------------------------

def _median_abs(values: list[str | None]) -> float:
    nums = []
    for v in values:
        try:
            nums.append(abs(float(v)))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
    return float(np.median(nums)) if nums else 0.0


def round_to(step: int, columns: tuple[str, ...], *, max_error: float = 0.05) -> Attack:
    """Round every given numeric column to a multiple of ``step`` where that is a change a
    user would accept (the column's median is at least ``step / max_error``), written as
    an integer ("5234.56" -> "5230")."""
    def attack(table: pa.Table, rng: random.Random) -> pa.Table:
        for name in columns:
            if name not in table.column_names:
                continue
            values = table.column(name).to_pylist()
            if _median_abs(values) * max_error < step:
                continue
            out = [None if v is None else str(round(float(v) / step) * step) for v in values]
            pos = table.column_names.index(name)
            table = table.set_column(pos, name, pa.array(out, type=pa.string()))
        return table
    return attack


def rounded_columns(table: pa.Table, step: int, columns: tuple[str, ...],
                    max_error: float = 0.05) -> tuple[str, ...]:
    """The columns :func:`round_to` would round."""
    return tuple(c for c in columns if c in table.column_names
                 and _median_abs(table.column(c).to_pylist()) * max_error >= step)


def drop(*names: str) -> Attack:
    """Drop the named columns."""
    def attack(table: pa.Table, rng: random.Random) -> pa.Table:
        return table.drop_columns([n for n in names if n in table.column_names])
    return attack


def bump(columns: tuple[str, ...], amount: int = 2, share: float = 0.5, *,
         units: bool = False) -> Attack:
    """Change ``share`` of the values of ``columns`` by ±``amount`` in the last digit (or,
    with ``units``, by ±``amount`` of the value itself: "5234.56" -> "5236.56")."""
    from decimal import Decimal

    def change(v: str, rng: random.Random) -> str:
        d = Decimal(v)
        ulp = Decimal(1) if units else Decimal(1).scaleb(int(d.as_tuple().exponent))
        return format(d + amount * ulp if rng.random() < 0.5 else d - amount * ulp, "f")
    return _change_values(columns, share, change)


def keep_rows(count: int) -> Attack:
    """Keep ``count`` random rows."""
    def attack(table: pa.Table, rng: random.Random) -> pa.Table:
        return keep_fraction(table, rng, min(1.0, count / max(table.num_rows, 1)))
    return attack


def gbk(table: pa.Table, rng: random.Random) -> pa.Table:
    """Write the CSV in GBK (as a Chinese spreadsheet would) and read it back as GBK."""
    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    data = buf.getvalue().decode("utf-8").encode("gbk")
    return pacsv.read_csv(io.BytesIO(data), read_options=pacsv.ReadOptions(encoding="gbk"),
                          convert_options=pacsv.ConvertOptions(
                              column_types={n: pa.string() for n in table.column_names}))


def chain(*steps: Attack) -> Attack:
    """Several attacks, one after the other."""
    def attack(table: pa.Table, rng: random.Random) -> pa.Table:
        for step in steps:
            table = step(table, rng)
        return table
    return attack


STREETS = ["泉城路街道", "大明湖街道", "趵突泉街道", "千佛山街道", "文东街道", "甸柳街道",
           "燕山街道", "姚家街道", "龙洞街道", "舜华路街道", "解放路街道", "智远街道"]
ISSUE_COLUMNS = ("编号", "街道", "年龄", "月收入", "公积金缴存额", "用电量", "缴费月数")
ENGLISH_COLUMNS = ("id", "street", "age", "monthly_income", "housing_fund", "electricity_kwh",
                   "months_paid")


def issue_table(n: int, seed: int = 1, *, english: bool = False) -> pa.Table:
    """The table of issue 17: 编号, 街道, 年龄, 月收入 (two decimals), 公积金缴存额, 用电量,
    缴费月数 — or the same with English headers."""
    r = np.random.default_rng(seed)
    income = np.exp(r.normal(8.8, 0.5, n))
    fund = income * r.uniform(0.10, 0.24, n)
    power = r.gamma(4.0, 60.0, n) + 5
    cols = [
        pa.array([f"{370100000 + i}" for i in range(n)]),
        pa.array([STREETS[i] for i in r.integers(0, len(STREETS), n)]),
        pa.array([str(v) for v in r.integers(18, 81, n)]),
        pa.array([f"{v:.2f}" for v in income]),
        pa.array([f"{v:.2f}" for v in fund]),
        pa.array([f"{v:.1f}" for v in power]),
        pa.array([str(v) for v in r.integers(1, 361, n)]),
    ]
    return pa.table(dict(zip(ENGLISH_COLUMNS if english else ISSUE_COLUMNS, cols, strict=True)))


# -- masked values and pseudonyms: an extract written by the masking operators ----------

def extract_table(n: int, seed: int = 1, *, variants: bool = False) -> pa.Table:
    """An extract as the masking profiles write it: 编号, a hashed ID number (``hash``,
    prefix ``ID-``), a masked mobile number (``mask``), a made-up bank card and phone
    (``fake``), an amount and a date. About one person in three has several rows (the same
    pseudonym and fake on each). ``variants``: the phone masked with ``variants: true``
    (the unmarked copy a marked one is compared with)."""
    from desensitize.keys import Keyring
    from desensitize.operators import OpContext, apply_operator

    r = np.random.default_rng(seed)
    ring = Keyring(b"k" * 32)
    person = r.integers(0, max(n * 2 // 3, 1), n)
    people = np.unique(person)
    ids = {p: f"370102{1960 + p % 40}{1 + p % 12:02d}{1 + p % 28:02d}{p % 1000:03d}X"
           for p in people.tolist()}
    phones = {p: f"1{r.integers(30, 99)}{r.integers(0, 10**8):08d}" for p in people.tolist()}
    cards = {p: f"62{r.integers(10**14, 10**15)}{r.integers(0, 10)}" for p in people.tolist()}

    def op(name: str, values: list[str], entity: str, **params: object) -> pa.Array:
        return apply_operator(name, pa.array(values, pa.string()), params,
                              OpContext(keyring=ring, entity=entity))

    who = person.tolist()
    cols = {
        "编号": pa.array([f"{510000000 + i}" for i in range(n)]),
        "证件号": op("hash", [ids[p] for p in who], "CN_RESIDENT_ID", prefix="ID-"),
        "手机号": op("mask", [phones[p] for p in who], "PHONE_NUMBER", variants=variants),
        "联系电话": op("fake", [phones[p] for p in who], "PHONE_NUMBER"),
        "银行卡": op("fake", [cards[p] for p in who], "CN_BANK_CARD"),
        "消费金额": pa.array([f"{v:.2f}" for v in np.exp(r.normal(7.5, 0.8, n))]),
        "交易日期": pa.array([f"2024-{m:02d}-{d:02d}" for m, d in
                           zip(r.integers(1, 13, n), r.integers(1, 29, n), strict=True)]),
    }
    return pa.table(cols)
