"""Marks in masked PII (``138****5678``, ``3701**********1234``, ``欧阳**``).

A masked value has many equivalent renderings: which characters are hidden is a choice of
the masking profile. A selected cell carries one bit in the parity of its number of mask
characters (XOR a keyed mask bit); to flip it the embedder hides one more character next
to the first mask run — on the left or right by a keyed choice. Hiding more never
reveals anything, so a fully masked extract still carries the mark.

A cell is eligible when it has at least four characters and contains a mask character;
it can be flipped only when at least two characters stay visible (otherwise it is left
as is and counted as ``unflippable``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watermark.numeric import bit_index, mask_bit, select

MASK_CHARS = "*＊●"
_HAS_MASK = "[*＊●]"
_MIN_LEN = 4


def eligible(arr: pa.Array) -> np.ndarray:
    """Cells that may carry a bit (length >= 4 with at least one mask character)."""
    has = pc.fill_null(pc.match_substring_regex(arr, _HAS_MASK), False)
    long = pc.fill_null(pc.greater_equal(pc.utf8_length(arr), _MIN_LEN), False)
    return np.asarray(pc.and_(has, long).to_numpy(zero_copy_only=False), dtype=bool)


def looks_masked(arr: pa.Array, share: float = 0.8) -> bool:
    """Is this a masked column (most non-empty values contain a mask character)?"""
    non_empty = pc.fill_null(pc.greater(pc.utf8_length(arr), 0), False)
    total = pc.sum(non_empty).as_py() or 0
    if total == 0:
        return False
    has = pc.fill_null(pc.match_substring_regex(arr, _HAS_MASK), False)
    return (pc.sum(has).as_py() or 0) >= share * total


def _mask_count(text: str) -> int:
    return sum(text.count(c) for c in MASK_CHARS)


def _hide_one(text: str, right: bool) -> str | None:
    # Hide one visible character next to the first run of mask characters.
    start = next(i for i, ch in enumerate(text) if ch in MASK_CHARS)
    end = start
    while end < len(text) and text[end] in MASK_CHARS:
        end += 1
    if len(text) - _mask_count(text) < 2:
        return None
    left_ok = start > 0
    right_ok = end < len(text)
    if right_ok and (right or not left_ok):
        return text[:end] + text[start] + text[end + 1:]
    if left_ok:
        return text[:start - 1] + text[start] + text[start:]
    return None


@dataclass(frozen=True)
class MaskedResult:
    """A marked masked column and counts of what happened."""

    array: pa.Array
    marked: int
    changed: int
    unflippable: int


def embed_masked(arr: pa.Array, sel: np.ndarray, code: np.ndarray, *,
                 gamma: int) -> MaskedResult:
    """Mark one masked string column."""
    picked = np.flatnonzero(select(sel, gamma))
    sub = pc.take(arr, pa.array(picked))
    ok = eligible(sub)
    chosen = picked[ok]
    if chosen.size == 0:
        return MaskedResult(arr, 0, 0, 0)
    s = sel[chosen]
    target = code[bit_index(s, code.size)] ^ mask_bit(s)
    right = ((s >> np.uint64(41)) & np.uint64(1)).astype(bool)
    values = pc.filter(sub, pa.array(ok)).to_pylist()
    where: list[int] = []
    news: list[str] = []
    unflippable = 0
    for i, text, t, r in zip(chosen.tolist(), values, target.tolist(), right.tolist(),
                             strict=True):
        if _mask_count(text) % 2 == t:
            continue
        new = _hide_one(text, r)
        if new is None:
            unflippable += 1
            continue
        where.append(i)
        news.append(new)
    if not where:
        return MaskedResult(arr, int(chosen.size), 0, unflippable)
    mask = np.zeros(len(arr), dtype=bool)
    mask[where] = True
    out = pc.replace_with_mask(arr, pa.array(mask), pa.array(news, type=pa.string()))
    return MaskedResult(out, int(chosen.size), len(where), unflippable)


def read_masked(arr: pa.Array, sel: np.ndarray, *, gamma: int,
                code_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(bit index, recovered bit) of every selected eligible cell of a suspect column."""
    picked = np.flatnonzero(select(sel, gamma))
    sub = pc.take(arr, pa.array(picked))
    ok = eligible(sub)
    if not ok.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8)
    s = sel[picked[ok]]
    sub = pc.filter(sub, pa.array(ok))
    counts = np.zeros(len(sub), dtype=np.int64)
    for ch in MASK_CHARS:
        counts += pc.count_substring(sub, ch).to_numpy(zero_copy_only=False).astype(np.int64)
    bits = (counts % 2).astype(np.int8) ^ mask_bit(s)
    return bit_index(s, code_bits), bits


def embed_masked_at(arr: pa.Array, rows: np.ndarray, target: np.ndarray,
                    right: np.ndarray) -> MaskedResult:
    """Mark the cells ``rows`` (ascending) with the bits ``target`` (version-2 plans)."""
    if rows.size == 0:
        return MaskedResult(arr, 0, 0, 0)
    sub = pc.take(arr, pa.array(rows))
    ok = eligible(sub)
    chosen = rows[ok]
    values = pc.filter(sub, pa.array(ok)).to_pylist()
    where: list[int] = []
    news: list[str] = []
    unflippable = 0
    for i, text, t, r in zip(chosen.tolist(), values, target[ok].tolist(),
                             right[ok].tolist(), strict=True):
        if _mask_count(text) % 2 == t:
            continue
        new = _hide_one(text, r)
        if new is None:
            unflippable += 1
            continue
        where.append(i)
        news.append(new)
    if not where:
        return MaskedResult(arr, int(chosen.size), 0, unflippable)
    mask = np.zeros(len(arr), dtype=bool)
    mask[where] = True
    out = pc.replace_with_mask(arr, pa.array(mask), pa.array(news, type=pa.string()))
    return MaskedResult(out, int(chosen.size), len(where), unflippable)


def read_masked_at(arr: pa.Array, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kept positions into ``rows``, mask-count parity) of the eligible cells."""
    if rows.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8)
    sub = pc.take(arr, pa.array(rows))
    ok = eligible(sub)
    if not ok.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8)
    sub = pc.filter(sub, pa.array(ok))
    counts = np.zeros(len(sub), dtype=np.int64)
    for ch in MASK_CHARS:
        counts += pc.count_substring(sub, ch).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.flatnonzero(ok), (counts % 2).astype(np.int8)
