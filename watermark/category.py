"""Category marks: which of two equivalent spellings a value is written in.

Some columns already write one category several ways — ``男`` / ``男性``, ``Ａ栋`` /
``A栋``, ``Yes`` / ``yes`` — spellings that are one value once normalised (NFKC, case,
spaces, a few universal synonyms; :func:`normalise`). A marked cell of such a class carries one bit in the parity of
its spelling's index in the class (the class's spellings are listed in the plan, sorted).
To set it the cell takes another spelling of its class — but only as many cells move one
way as the other, class by class, so every spelling keeps its count and a chi-square on
the categories sees nothing; the cells left as they were are wrong votes the majority
absorbs. New spellings are never invented: a column without variants carries no mark.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watermark.positions import Positions

_MAX_CLASSES = 50
_MIN_SHARE = 0.2  # rows of variant classes needed for a column to carry marks


# Spellings that mean the same in every table (after the normalisation below).
_SAME = {"男性": "男", "male": "男", "m": "男", "女性": "女", "female": "女", "f": "女",
         "yes": "是", "y": "是", "true": "是", "no": "否", "n": "否", "false": "否"}


def normalise(text: str) -> str:
    """The class of a spelling: NFKC, case-folded, without whitespace, and a few
    universal synonyms (男/男性/M, 女/女性/F, 是/Y/Yes, 否/N/No)."""
    key = "".join(unicodedata.normalize("NFKC", text).casefold().split())
    return _SAME.get(key, key)


def variant_classes(arr: pa.Array) -> tuple[tuple[str, ...], ...]:
    """Classes with at least two spellings (each seen at least twice), when they cover
    enough of the column; otherwise ``()``."""
    counts = Counter(v for v in arr.to_pylist() if v)
    if not counts or len(counts) > 200:
        return ()
    classes: dict[str, list[str]] = {}
    for spelling, n in counts.items():
        if n >= 2:
            classes.setdefault(normalise(spelling), []).append(spelling)
    multi = sorted(tuple(sorted(v)) for v in classes.values() if len(v) >= 2)[:_MAX_CLASSES]
    covered = sum(counts[s] for c in multi for s in c)
    return tuple(multi) if covered >= _MIN_SHARE * sum(counts.values()) else ()


def _index(values: list[str | None], classes: tuple[tuple[str, ...], ...]
           ) -> tuple[np.ndarray, np.ndarray]:
    where = {s: (k, i) for k, c in enumerate(classes) for i, s in enumerate(c)}
    cls = np.full(len(values), -1, dtype=np.int64)
    idx = np.full(len(values), -1, dtype=np.int64)
    for j, v in enumerate(values):
        hit = where.get(v) if v is not None else None
        if hit is not None:
            cls[j], idx[j] = hit
    return cls, idx


def embed_category(arr: pa.Array, pos: Positions, code: np.ndarray,
                   classes: tuple[tuple[str, ...], ...]) -> tuple[pa.Array, int, int]:
    """Mark one category column; returns (array, marked cells, changed cells)."""
    if pos.rows.size == 0 or not classes:
        return arr, 0, 0
    values = pc.take(arr, pa.array(pos.rows)).to_pylist()
    cls, idx = _index(values, classes)
    ok = cls >= 0
    target = code[pos.bit] ^ pos.mask
    want = ok & ((idx & 1) != target)
    rows: list[int] = []
    news: list[str] = []
    for k, spellings in enumerate(classes):
        # Balance: as many cells leave the even spellings as leave the odd ones.
        up = np.flatnonzero(want & (cls == k) & ((idx & 1) == 0))
        down = np.flatnonzero(want & (cls == k) & ((idx & 1) == 1))
        m = min(up.size, down.size)
        odd = [s for i, s in enumerate(spellings) if i % 2 == 1]
        even = [s for i, s in enumerate(spellings) if i % 2 == 0]
        for j in up[:m].tolist():
            rows.append(int(pos.rows[j]))
            news.append(odd[int(pos.bit[j]) % len(odd)])
        for j in down[:m].tolist():
            rows.append(int(pos.rows[j]))
            news.append(even[int(pos.bit[j]) % len(even)])
    if not rows:
        return arr, int(ok.sum()), 0
    order = np.argsort(rows)
    mask = np.zeros(len(arr), dtype=bool)
    mask[np.asarray(rows)] = True
    out = pc.replace_with_mask(arr, pa.array(mask),
                               pa.array([news[i] for i in order.tolist()], type=pa.string()))
    return out, int(ok.sum()), len(rows)


def read_category(arr: pa.Array, pos: Positions, classes: tuple[tuple[str, ...], ...]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, bit index, recovered bit) of every marked cell written in a known spelling."""
    if pos.rows.size == 0 or not classes:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z.astype(np.int8)
    values = pc.take(arr, pa.array(pos.rows)).to_pylist()
    cls, idx = _index(values, classes)
    ok = cls >= 0
    bits = (idx[ok] & 1).astype(np.int8) ^ pos.mask[ok]
    return pos.rows[ok], pos.bit[ok], bits
