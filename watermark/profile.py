"""What a column's values are: measure, discrete, date, masked, identifier or text.

Carriers are chosen by the values, not the header: a column of decimals with a spread
of magnitudes is a measure whatever it is called (``月收入`` is one); a column of
fixed-width digit strings is a code; a handful of small integers is a category. Header
words are hints only — they break ties where the values leave a choice (an integer
column named like a phone number or a date is a code, not a measure).

For a measure the profile also says where a mark may go without being seen: the levels
``10**e`` at which a value may move (``10**e <= max_rel_error * |v|`` and ``10**e <=
max_step``, both from the watermark policy) and whose digit is
spread evenly in the sample, so that moving it by one leaves the digit distribution as
it was.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watermark.masked import eligible as masked_eligible
from watermark.masked import looks_masked, standard_counts

DECIMAL = r"^[+-]?[0-9]+(\.[0-9]+)?$"
DATE = (r"^(?P<y>[0-9]{4})(?P<s1>[-/.年])(?P<m>[0-9]{1,2})(?P<s2>[-/.月])(?P<d>[0-9]{1,2})"
        r"(?P<rest>.*)$")
_CODE_HINT = re.compile(
    r"(id$|^id_|编号|号码|号$|电话|手机|phone|mobile|tel|zip|邮编|邮政|code|代码|编码|证|"
    r"account|账号|卡号|序号|^no$|_no$)", re.IGNORECASE)
_TIME_HINT = re.compile(r"(date|time|日期|时间|^year$|年份)", re.IGNORECASE)
_DISCRETE_MAX = 400  # integers with fewer distinct values are categories, not measures
_LEVELS = 3
_MIN_BUCKET = 2  # identity buckets of at least 100 units: rounding to 10 rarely moves one


@dataclass(frozen=True)
class Numbers:
    """Decimal text parsed exactly: ``value = sign * scaled / 10**decimals``."""

    ok: np.ndarray  # bool: a plain decimal without leading zeros
    scaled: np.ndarray  # int64 absolute value in units of the last written digit
    negative: np.ndarray  # bool
    decimals: np.ndarray  # int64 digits after the point
    value: np.ndarray  # float64 (nan where not ok)


@dataclass(frozen=True)
class ColumnProfile:
    """What one column is, from a sample of its values."""

    name: str
    kind: str  # "measure" | "discrete" | "date" | "masked" | "id" | "text" | "empty"
    distinct: int
    unique: bool
    levels: tuple[int, ...] = ()  # measure: exponents a mark may use (coarsest last)
    bucket: int | None = None  # measure: exponent of a coarse, mark-stable bucket
    dates_ok: bool = False  # date: day-of-month spread enough to move by a day
    masked_ok: bool = False  # masked: most values can carry a bit, written in form A


def parse_numbers(arr: pa.Array) -> Numbers:
    """Exact parse of decimal text (vectorised); values with >18 digits are not ok."""
    n = len(arr)
    ok = np.asarray(pc.fill_null(pc.match_substring_regex(arr, DECIMAL), False)
                    .to_numpy(zero_copy_only=False), dtype=bool)
    text = pc.fill_null(arr, "0")
    neg = np.asarray(pc.fill_null(pc.starts_with(text, "-"), False)
                     .to_numpy(zero_copy_only=False), dtype=bool)
    body = pc.utf8_ltrim(text, "+-")
    length = pc.utf8_length(body).to_numpy(zero_copy_only=False).astype(np.int64)
    dot = pc.find_substring(body, ".").to_numpy(zero_copy_only=False).astype(np.int64)
    decimals = np.where(dot >= 0, length - dot - 1, 0)
    digits = pc.replace_substring(body, ".", "")
    lead0 = np.asarray(pc.fill_null(pc.match_substring_regex(body, r"^0[0-9]"), False)
                       .to_numpy(zero_copy_only=False), dtype=bool)
    dlen = pc.utf8_length(digits).to_numpy(zero_copy_only=False).astype(np.int64)
    ok &= ~lead0 & (dlen <= 18)
    safe = pc.if_else(pa.array(ok), digits, pa.scalar("0"))
    scaled = pc.cast(safe, pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
    value = np.where(ok, scaled / np.power(10.0, decimals) * np.where(neg, -1.0, 1.0), np.nan)
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return Numbers(np.zeros(0, dtype=bool), z, np.zeros(0, dtype=bool), z, z.astype(float))
    return Numbers(ok, scaled, neg, decimals, value)


def _share(mask: np.ndarray, base: np.ndarray) -> float:
    total = int(base.sum())
    return float((mask & base).sum()) / total if total else 0.0


def _uniform_enough(digits: np.ndarray) -> bool:
    # Chi-square of the digit at a position against uniform; a column whose digit there
    # is lumpy (prices ending in 0 or 9, rounded amounts) would show a moved digit.
    if digits.size < 50:
        return digits.size > 0
    counts = np.bincount(digits, minlength=10).astype(float)
    exp = digits.size / 10
    stat = float(((counts - exp) ** 2 / exp).sum())
    return stat < 27.88  # chi-square, 9 degrees of freedom, p = 0.001


def _measure_levels(num: Numbers, max_rel_error: float, max_step: int) -> tuple[int, ...]:
    vals = np.abs(num.value[num.ok])
    vals = vals[vals > 0]
    if vals.size == 0:
        return ()
    ulp = -int(np.bincount(num.decimals[num.ok]).argmax())
    top = min(math.floor(math.log10(max_rel_error * float(np.median(vals)))),
              round(math.log10(max_step)))
    out = []
    for e in range(max(top - _LEVELS + 1, ulp), top + 1):
        scaled = vals[vals * max_rel_error >= 10.0 ** e]
        digit = (np.floor(scaled / 10.0 ** e + 0.5).astype(np.int64)) % 10
        if _uniform_enough(digit):
            out.append(e)
    return tuple(out)


def profile_column(name: str, arr: pa.Array, *, max_rel_error: float = 0.02,
                   max_step: int = 10) -> ColumnProfile:
    """Classify a sample of one string column."""
    n = len(arr)
    filled = np.asarray(pc.fill_null(pc.greater(pc.utf8_length(arr), 0), False)
                        .to_numpy(zero_copy_only=False), dtype=bool)
    distinct = int(pc.count_distinct(arr).as_py() or 0)
    unique = n > 0 and not arr.null_count and distinct == n
    if filled.sum() < max(0.5 * n, 1):
        return ColumnProfile(name, "empty", distinct, unique)
    if looks_masked(arr):
        ok = bool(masked_eligible(arr).mean() >= 0.5) and bool(standard_counts(arr))
        return ColumnProfile(name, "masked", distinct, unique, masked_ok=ok)
    is_date = np.asarray(pc.fill_null(pc.match_substring_regex(arr, DATE), False)
                         .to_numpy(zero_copy_only=False), dtype=bool)
    if _share(is_date, filled) >= 0.9:
        days = pc.extract_regex(pc.filter(arr, pa.array(is_date)), DATE)
        day_distinct = int(pc.count_distinct(pc.struct_field(days, [4])).as_py() or 0)
        return ColumnProfile(name, "date", distinct, unique, dates_ok=day_distinct >= 20)
    num = parse_numbers(arr)
    if _share(num.ok, filled) >= 0.95:
        return _numeric_profile(name, arr, num, filled, distinct, unique, max_rel_error,
                                max_step)
    return ColumnProfile(name, "id" if unique else "text", distinct, unique)


def _numeric_profile(name: str, arr: pa.Array, num: Numbers, filled: np.ndarray,
                     distinct: int, unique: bool, max_rel_error: float,
                     max_step: int) -> ColumnProfile:
    has_point = _share(num.decimals > 0, filled) >= 0.5
    if not has_point:
        # Integers: a code when fixed-width or zero-padded, a category when few values.
        raw_len = pc.fill_null(pc.utf8_length(arr), 0).to_numpy(zero_copy_only=False)
        width = int(np.bincount(raw_len[filled]).argmax()) if filled.any() else 0
        fixed = _share(raw_len == width, filled) >= 0.95 and width >= 6
        padded = _share(np.asarray(pc.fill_null(pc.match_substring_regex(arr, r"^0[0-9]"),
                                                False).to_numpy(zero_copy_only=False),
                                   dtype=bool), filled) >= 0.05
        hinted = bool(_CODE_HINT.search(name) or _TIME_HINT.search(name))
        if padded or fixed or (hinted and (unique or width >= 4)):
            return ColumnProfile(name, "id" if unique else "text", distinct, unique)
        if distinct < _DISCRETE_MAX:
            return ColumnProfile(name, "discrete", distinct, unique)
    elif distinct < 50:
        return ColumnProfile(name, "discrete", distinct, unique)
    levels = _measure_levels(num, max_rel_error, max_step)
    vals = np.abs(num.value[num.ok])
    vals = vals[vals > 0]
    bucket = None
    if vals.size and levels:
        # Above the coarsest mark: a mark can always move the other way to stay in its
        # bucket, so only an outside edit (rounding across a bucket edge) moves it.
        b = max(max(levels) + 1, _MIN_BUCKET)
        if np.unique(np.floor(vals / 10.0 ** b)).size >= 2:
            bucket = b
    return ColumnProfile(name, "measure", distinct, unique, levels=levels, bucket=bucket)
