"""Choosing the key and the columns to mark from the first batch of a table."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watermark.errors import NoMarkableColumns, WatermarkError
from watermark.masked import eligible, looks_masked
from watermark.models import Params, Plan
from watermark.numeric import as_string

_ID_NAME = re.compile(
    r"(^id$|_id$|^id_|^pk$|^key$|uuid|编号|主键|序号|流水号|^no$|_no$|编码$)", re.IGNORECASE)
# Numbers that are identifiers, codes or dates: never marked unless named explicitly.
_NOT_A_MEASURE = re.compile(
    r"(id$|^id_|编号|号码|号$|电话|手机|phone|mobile|tel|zip|邮编|邮政|code|代码|编码|证|"
    r"account|账号|卡号|date|time|日期|时间|年|year|month|月|day|日$|序号|^no$|_no$)", re.IGNORECASE)
_DATE_VALUE = r"^[0-9]{4}[-/年.][0-9]{1,2}"
_DECIMAL = r"^[+-]?[0-9]+(\.[0-9]+)?$"


def _share(arr: pa.Array, pattern: str) -> float:
    non_empty = pc.fill_null(pc.greater(pc.utf8_length(arr), 0), False)
    total = pc.sum(non_empty).as_py() or 0
    if total == 0:
        return 0.0
    hit = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
    return float(pc.sum(hit).as_py() or 0) / total


def _median_sig_digits(arr: pa.Array) -> float:
    ok = pc.fill_null(pc.match_substring_regex(arr, _DECIMAL), False)
    vals = pc.filter(arr, ok)
    if len(vals) == 0:
        return 0.0
    digits = pc.utf8_length(pc.replace_substring_regex(
        pc.replace_substring_regex(vals, r"[+\-.]", ""), r"^0+", ""))
    return float(np.median(digits.to_numpy(zero_copy_only=False)))


def _is_unique_key(arr: pa.Array) -> bool:
    if arr.null_count or len(arr) == 0:
        return False
    return bool(pc.count_distinct(arr).as_py() == len(arr))


def _numeric_ok(name: str, arr: pa.Array, min_digits: int) -> bool:
    if _NOT_A_MEASURE.search(name):
        return False
    if _share(arr, _DATE_VALUE) > 0.5:
        return False
    return _share(arr, _DECIMAL) >= 0.95 and _median_sig_digits(arr) >= min_digits


def plan_columns(batch: pa.RecordBatch, params: Params) -> Plan:
    """Decide the row key and the marked columns from a sample batch.

    Raises ``WatermarkError`` for named columns that do not exist and
    ``NoMarkableColumns`` when nothing can carry a mark.
    """
    names = list(batch.schema.names)
    batch = batch.slice(0, min(batch.num_rows, 5000))
    cols = {n: as_string(batch.column(n)) for n in names}
    for n in params.key_columns + params.columns:
        if n not in cols:
            raise WatermarkError(f"column {n!r} is not in the table (columns: {', '.join(names)})")
    keys = tuple(params.key_columns)
    if not keys:
        found = [n for n in names if _ID_NAME.search(n) and _is_unique_key(cols[n])]
        keys = tuple(found[:1])
    numeric: list[str] = []
    masked: list[str] = []
    candidates = params.columns or tuple(n for n in names if n not in keys)
    for n in candidates:
        if n in keys:
            raise WatermarkError(f"column {n!r} is the row key and cannot be marked")
        if looks_masked(cols[n]):
            # Short masked values ("张*") cannot carry a bit; such a column stays stable.
            if params.columns or eligible(cols[n]).mean() >= 0.5:
                masked.append(n)
        elif params.columns and _share(cols[n], _DECIMAL) >= 0.5 or _numeric_ok(n, cols[n], params.min_digits):
            numeric.append(n)
    if not numeric and not masked:
        raise NoMarkableColumns(tuple(names))
    mode = "primary"
    if not keys:
        mode = "virtual"
        keys = tuple(sorted((n for n in names if n not in numeric and n not in masked),
                            key=lambda x: x.strip().lower()))
        if not keys:
            raise WatermarkError(
                "every column would be marked, none is left to key the marks by; "
                "name a key column or fewer columns to mark")
    return Plan(mode, keys, tuple(numeric), tuple(masked), params.gamma, params.code_bits,
                params.min_digits)
