"""Resident ID numbers (GB 11643) ↔ integer ranks, for whole batches with numpy.

The rank of ``PPRRRRYYYYMMDDSSS`` + check is
``((province_index * 10000 + RRRR) * DAYS + days_since_1900_01_01) * 1000 + SSS``;
:mod:`desensitize.operators.fpe` encrypts ranks with FF1 and renders them back,
recomputing the check character (GB 11643 arithmetic and the province table come from
:mod:`desensitize.standards`; the date range of the rank domain is defined here).  Same results as the one-value functions there
(tests compare them); this module only makes them fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Any

from desensitize.standards import GB11643_CHECK, GB11643_WEIGHTS, provinces

DATE_FIRST = date(1900, 1, 1)
DATE_LAST = date(2025, 12, 31)
DAYS = (DATE_LAST - DATE_FIRST).days + 1

if TYPE_CHECKING:
    import numpy as np
else:  # loaded on first use: importing the fpe operator (a policy load does) needs no numpy
    from desensitize.operators._libs import np


@cache
def _arrays() -> tuple[Any, Any, Any, Any]:
    """The GB 11643 weights, the first and last date of the domain, the check characters."""
    return (np.array(GB11643_WEIGHTS, dtype=np.int64),
            np.datetime64(DATE_FIRST.isoformat(), "D"),
            np.datetime64(DATE_LAST.isoformat(), "D"),
            np.frombuffer(GB11643_CHECK.encode(), dtype=np.uint8))


def _province_lookup() -> tuple[np.ndarray, np.ndarray]:
    provs = provinces()
    index = np.full(100, -1, dtype=np.int64)
    for i, code in enumerate(provs):
        index[int(code)] = i
    codes = np.array([int(c) for c in provs], dtype=np.int64)
    return index, codes


def ranks_from_ids(items: Sequence[str]) -> np.ndarray:
    """int64 ranks of resident IDs; ValueError naming the first problem (never the value)."""
    n = len(items)
    if any(len(v) != 18 for v in items):
        raise ValueError("not an 18-character resident ID")
    try:
        raw = np.frombuffer("".join(items).upper().encode("ascii"), dtype=np.uint8).reshape(n, 18)
    except UnicodeEncodeError:
        raise ValueError("not an 18-character resident ID") from None
    _weights, epoch, last_day, check = _arrays()
    digits = raw[:, :17].astype(np.int64) - 48
    last = raw[:, 17]
    if ((digits < 0) | (digits > 9)).any() or not np.isin(last, check).all():
        raise ValueError("not an 18-character resident ID")
    index, _ = _province_lookup()
    prov = index[digits[:, 0] * 10 + digits[:, 1]]
    if (prov < 0).any():
        raise ValueError("unknown province code")
    region = digits[:, 2:6] @ np.array([1000, 100, 10, 1])
    year = digits[:, 6:10] @ np.array([1000, 100, 10, 1])
    month = digits[:, 10] * 10 + digits[:, 11]
    day = digits[:, 12] * 10 + digits[:, 13]
    if ((month < 1) | (month > 12) | (day < 1)).any():
        raise ValueError("no valid birth date")
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    born = months.astype("datetime64[D]") + (day - 1).astype("timedelta64[D]")
    if (born.astype("datetime64[M]") != months).any():
        raise ValueError("no valid birth date")
    if ((born < epoch) | (born > last_day)).any():
        raise ValueError("birth date outside 1900..2025")
    days = (born - epoch).astype(np.int64)
    seq = digits[:, 14:17] @ np.array([100, 10, 1])
    ranks: np.ndarray = ((prov * 10_000 + region) * DAYS + days) * 1000 + seq
    return ranks


def ids_from_ranks(ranks: Sequence[int]) -> list[str]:
    """Resident IDs (check character recomputed) of ranks."""
    weights, epoch, _last_day, check = _arrays()
    r = np.asarray(ranks, dtype=np.int64)
    n = len(r)
    rest, seq = np.divmod(r, 1000)
    rest, day = np.divmod(rest, DAYS)
    prov, region = np.divmod(rest, 10_000)
    _, codes = _province_lookup()
    dates = np.datetime_as_string(epoch + day.astype("timedelta64[D]"), unit="D")
    ymd = np.frombuffer(dates.astype("S10").tobytes(), dtype=np.uint8).reshape(n, 10)
    body = np.empty((n, 17), dtype=np.int64)
    code = codes[prov]
    body[:, 0], body[:, 1] = code // 10, code % 10
    for k, p in enumerate((1000, 100, 10, 1)):
        body[:, 2 + k] = region // p % 10
    body[:, 6:10] = ymd[:, 0:4] - 48
    body[:, 10:12] = ymd[:, 5:7] - 48
    body[:, 12:14] = ymd[:, 8:10] - 48
    for k, p in enumerate((100, 10, 1)):
        body[:, 14 + k] = seq // p % 10
    out = np.empty((n, 18), dtype=np.uint8)
    out[:, :17] = body + 48
    out[:, 17] = check[(body @ weights) % 11]
    text = out.tobytes().decode("ascii")
    return [text[i : i + 18] for i in range(0, 18 * n, 18)]
