"""Date marks: the parity of the day number, moved by one day inside its month.

``2024-03-07`` is day 19789 since 1970-01-01; a marked cell carries one bit in the parity
of that number XOR a keyed mask bit. To set it the date moves by one day, never out of its
month (the first of a month moves forward, the last backward, others by a keyed coin), so
the month — the form dates take in a row identity — never changes. The separators, the
width of the day, and anything after the date (a time) are kept as written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watermark.positions import Positions
from watermark.profile import DATE


@dataclass(frozen=True)
class Dates:
    ok: np.ndarray
    year: np.ndarray
    month: np.ndarray
    day: np.ndarray
    days: np.ndarray  # day number since 1970-01-01
    last: np.ndarray  # last day of the month


def _days(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    # Days from the civil date (H. Hinnant, "chrono-compatible low-level date algorithms").
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    out: np.ndarray = era * 146097 + doe - 719468
    return out


def parse_dates(arr: pa.Array) -> Dates:
    """Year, month, day and day number of every date-like cell (vectorised)."""
    n = len(arr)
    text = pc.fill_null(arr, "")
    ok = np.asarray(pc.match_substring_regex(text, DATE).to_numpy(zero_copy_only=False),
                    dtype=bool)
    z = np.zeros(n, dtype=np.int64)
    if not ok.any():
        return Dates(ok, z, z, z, z, z)
    parts = pc.extract_regex(pc.if_else(pa.array(ok), text, pa.scalar("1970-01-01")), DATE)

    def field(i: int) -> np.ndarray:
        values: np.ndarray = pc.cast(pc.struct_field(parts, [i]), pa.int64()).to_numpy(
            zero_copy_only=False).astype(np.int64)
        return values

    y, m, d = field(0), field(2), field(4)
    valid_m = (m >= 1) & (m <= 12)
    mm = np.where(valid_m, m, 1)
    first = _days(y, mm, np.ones(n, dtype=np.int64))
    nxt = _days(y + (mm == 12), np.where(mm == 12, 1, mm + 1), np.ones(n, dtype=np.int64))
    last = nxt - first
    ok &= valid_m & (d >= 1) & (d <= last)
    return Dates(ok, y, m, d, first + d - 1, last)


def embed_dates(arr: pa.Array, pos: Positions, code: np.ndarray) -> tuple[pa.Array, int, int]:
    """Mark one date column at ``pos``; returns (array, marked cells, changed cells)."""
    if pos.rows.size == 0:
        return arr, 0, 0
    dt = parse_dates(arr)
    ok = dt.ok[pos.rows] & (dt.last[pos.rows] >= 2)
    rows = pos.rows[ok]
    target = code[pos.bit[ok]] ^ pos.mask[ok]
    flip = (dt.days[rows] & 1) != target
    rows, coin = rows[flip], pos.coin[ok][flip]
    if rows.size == 0:
        return arr, int(ok.sum()), 0
    day, last = dt.day[rows], dt.last[rows]
    up = np.where(day == 1, True, np.where(day == last, False, coin))
    new_day = day + np.where(up, 1, -1)
    values = pc.take(arr, pa.array(rows)).to_pylist()
    parts = pc.extract_regex(pa.array(values, type=pa.string()), DATE).to_pylist()
    news = []
    for p, nd in zip(parts, new_day.tolist(), strict=True):
        width = len(p["d"])
        news.append(f"{p['y']}{p['s1']}{p['m']}{p['s2']}{nd:0{width}d}{p['rest']}")
    mask = np.zeros(len(arr), dtype=bool)
    mask[rows] = True
    out = pc.replace_with_mask(arr, pa.array(mask), pa.array(news, type=pa.string()))
    return out, int(ok.sum()), int(rows.size)


def read_dates(arr: pa.Array, pos: Positions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, bit index, recovered bit) of every readable marked date."""
    if pos.rows.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z.astype(np.int8)
    dt = parse_dates(arr)
    ok = dt.ok[pos.rows]
    bits = (dt.days[pos.rows][ok] & 1).astype(np.int8) ^ pos.mask[ok]
    return pos.rows[ok], pos.bit[ok], bits
