"""Marks in masked PII (``138****5678``, ``370102********1234``, ``z***@example.com``).

A masked value can be written in two equally private renderings: as the masking profile
wrote it (form A), or with one more character hidden next to its first run of mask
characters (form B: the first visible letter or digit right of the run, else the one left
of it). Form B shows a subset of what form A shows, so neither one copy nor several copies
together reveal more than the masking profile allows.

The unmarked masking writes each value in form A or B by a keyed coin, half and half (the
``mask`` operator's ``variants`` option). A marked copy is written the same way, except
that a cell chosen to carry a bit takes the form the bit says (``form = bit XOR keyed
mask``, itself half and half): mask counts, hidden positions and patterns are the same
mixture in a marked and an unmarked copy. The coin of the other cells is keyed by the
recipient and the value, so two copies differ in about half of their cells, not only
where marks are.

Which cells carry a bit is a keyed function of the value's form B (the same text whichever
form a copy shows), not of the row: one value reads the same everywhere in a copy, and
no row key is needed to find the marks. The embedder takes the masking profile's own
output (form A: each length masked with one count of mask characters); a column already
written in both forms cannot be marked without revealing characters and is left alone.
The plan keeps the standard count per length (``Carrier.patterns``) to tell A from B.

Legacy: copies issued by earlier releases carry a bit in the parity of the mask count at
a row position (one more character hidden to flip it); :func:`embed_masked` (version 1,
kept for tests of old records), :func:`read_masked` (version 1) and
:func:`read_masked_at` (version 2 "masked" carriers) read them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watermark.hashing import mix, row_hashes, subkey
from watermark.numeric import bit_index, mask_bit, select

MASK_CHARS = "*＊●"
_HAS_MASK = "[*＊●]"
_RUN = r"^(?P<h>[^*＊●]*)(?P<m>[*＊●]+)(?P<t>.*)$"
_WORD = r"[\pL\pN]"
_MIN_LEN = 4
_MIN_VISIBLE = 2  # characters form B must still show
_STANDARD = 0.98  # share of a length's cells that must have its standard count (form A)
_MAX_LENGTHS = 64
_U = np.uint64


def _bools(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _ints(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, 0).to_numpy(zero_copy_only=False), dtype=np.int64)


def eligible(arr: pa.Array) -> np.ndarray:
    """Cells that may carry a bit (length >= 4 with at least one mask character)."""
    has = _bools(pc.match_substring_regex(arr, _HAS_MASK))
    return has & (_ints(pc.utf8_length(arr)) >= _MIN_LEN)


def looks_masked(arr: pa.Array, share: float = 0.8) -> bool:
    """Is this a masked column (most non-empty values contain a mask character)?"""
    total = int(_bools(pc.greater(pc.utf8_length(arr), 0)).sum())
    return total > 0 and int(_bools(pc.match_substring_regex(arr, _HAS_MASK)).sum()) >= \
        share * total


def mask_counts(arr: pa.Array) -> np.ndarray:
    """Number of mask characters of every cell."""
    counts = np.zeros(len(arr), dtype=np.int64)
    for ch in MASK_CHARS:
        counts += _ints(pc.count_substring(arr, ch))
    return counts


def hide_one_more(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(form B of every cell, ok): one more character hidden next to the first mask run.

    The character right of the run is hidden when it is a letter or digit, else the one
    left of it; ``ok`` is False (and the cell returned as it is) where neither is, or
    fewer than two characters would stay visible: the cell then has form A only and
    carries no bit.
    """
    text = pc.fill_null(arr, "")
    parts = pc.extract_regex(text, _RUN)
    head = pc.fill_null(pc.struct_field(parts, [0]), "")
    run = pc.fill_null(pc.struct_field(parts, [1]), "")
    tail = pc.fill_null(pc.struct_field(parts, [2]), "")
    star = pc.utf8_slice_codeunits(run, 0, 1)
    right = _bools(pc.match_substring_regex(pc.utf8_slice_codeunits(tail, 0, 1), _WORD))
    left = _bools(pc.match_substring_regex(pc.utf8_slice_codeunits(head, -1), _WORD))
    as_right = pc.binary_join_element_wise(head, run, star,
                                           pc.utf8_slice_codeunits(tail, 1), "")
    as_left = pc.binary_join_element_wise(pc.utf8_slice_codeunits(head, 0, -1), star, run,
                                          tail, "")
    visible = _ints(pc.utf8_length(text)) - mask_counts(text) - 1
    ok = eligible(text) & _bools(pc.is_valid(parts)) & (right | left) & \
        (visible >= _MIN_VISIBLE)
    out = pc.if_else(pa.array(ok), pc.if_else(pa.array(right), as_right, as_left), text)
    return out, ok


def standard_counts(arr: pa.Array) -> tuple[tuple[int, int], ...]:
    """(length, mask count) of form A per length, or ``()`` when the column is not
    written in form A alone (a length without one dominant count)."""
    # Every masked cell counts, carrier or not: a length with two counts could not tell
    # a form-B cell from another value's form A.
    ok = eligible(arr)
    lengths = _ints(pc.utf8_length(arr))[ok]
    counts = mask_counts(arr)[ok]
    by_length: dict[int, Counter[int]] = {}
    for n, c in zip(lengths.tolist(), counts.tolist(), strict=True):
        by_length.setdefault(n, Counter())[c] += 1
    out = []
    for n, seen in sorted(by_length.items(), key=lambda x: -x[1].total())[:_MAX_LENGTHS]:
        count, hits = seen.most_common(1)[0]
        if hits < _STANDARD * seen.total():
            return ()
        out.append((n, count))
    return tuple(sorted(out))


def _forms(arr: pa.Array, patterns: tuple[tuple[int, int], ...]
           ) -> tuple[np.ndarray, np.ndarray, pa.Array, np.ndarray]:
    # (is form A, is form B, the form-B text, has a form B) of every cell.
    lengths = _ints(pc.utf8_length(arr))
    counts = mask_counts(arr)
    table = dict(patterns)
    std = np.array([table.get(n, -1) for n in lengths.tolist()], dtype=np.int64)
    is_a = (std >= 0) & (counts == std)
    # A B cell is one character longer in mask than its length's standard.
    is_b = (std >= 0) & (counts == std + 1)
    bform, ok = hide_one_more(arr)
    return is_a, is_b, bform, ok


@dataclass(frozen=True)
class PatternSites:
    """The cells of a masked column that carry bits, found from the values."""

    rows: np.ndarray  # int64 cells selected to carry a bit
    bit: np.ndarray  # int64 codeword bit carried
    mask: np.ndarray  # int8 keyed bit XORed on


def _sites(identity: pa.Array, secret: bytes, salt: np.uint64, *, gamma: int,
           code_bits: int) -> PatternSites:
    sel = mix(row_hashes(identity, subkey(secret, "mask-pattern")), salt)
    rows = np.flatnonzero(sel % _U(gamma) == 0)
    s = sel[rows]
    return PatternSites(rows, ((s >> _U(20)) % _U(code_bits)).astype(np.int64),
                        (s >> _U(63)).astype(np.int8))


def embed_patterns(arr: pa.Array, patterns: tuple[tuple[int, int], ...], code: np.ndarray,
                   secret: bytes, salt: np.uint64, *, gamma: int, coin_key: bytes
                   ) -> tuple[pa.Array, int, int]:
    """Write every form-A cell in form A or B; returns (array, marked cells, changed)."""
    is_a, _, bform, ok = _forms(arr, patterns)
    todo = is_a & ok
    if not todo.any():
        return arr, 0, 0
    sites = _sites(bform, secret, salt, gamma=gamma, code_bits=code.size)
    # The other cells take a keyed coin of their own value, as the mask operator's
    # variants do: values that share a form B are not tied together.
    form = (row_hashes(pc.fill_null(arr, ""), coin_key) >> _U(63)).astype(np.int8)
    form[sites.rows] = code[sites.bit] ^ sites.mask
    to_b = todo & (form == 1)
    marked = int(todo[sites.rows].sum())
    if not to_b.any():
        return arr, marked, 0
    return pc.if_else(pa.array(to_b), bform, arr), marked, int(to_b.sum())


def read_patterns(arr: pa.Array, patterns: tuple[tuple[int, int], ...], secret: bytes,
                  salt: np.uint64, *, gamma: int, code_bits: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, bit index, recovered bit) of every readable marked cell of a suspect."""
    is_a, is_b, bform, ok = _forms(arr, patterns)
    identity = pc.if_else(pa.array(is_b), pc.fill_null(arr, ""), bform)
    sites = _sites(identity, secret, salt, gamma=gamma, code_bits=code_bits)
    keep = ((is_a & ok) | is_b)[sites.rows]
    rows = sites.rows[keep]
    bits = is_b[rows].astype(np.int8) ^ sites.mask[keep]
    return rows, sites.bit[keep], bits


# -- copies of earlier releases: the parity of the mask count ---------------------------

def _hide_one(text: str, right: bool) -> str | None:
    # Hide one visible character next to the first run of mask characters.
    start = next(i for i, ch in enumerate(text) if ch in MASK_CHARS)
    end = start
    while end < len(text) and text[end] in MASK_CHARS:
        end += 1
    if len(text) - sum(text.count(c) for c in MASK_CHARS) < 2:
        return None
    if end < len(text) and (right or start == 0):
        return text[:end] + text[start] + text[end + 1:]
    if start > 0:
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
    """Mark one masked column the version-1 way (parity of the mask count)."""
    picked = np.flatnonzero(select(sel, gamma))
    ok = eligible(pc.take(arr, pa.array(picked)))
    chosen = picked[ok]
    s = sel[chosen]
    target = code[bit_index(s, code.size)] ^ mask_bit(s)
    right = ((s >> _U(41)) & _U(1)).astype(bool)
    values = pc.take(arr, pa.array(chosen)).to_pylist()
    where: list[int] = []
    news: list[str] = []
    unflippable = 0
    for i, text, t, r in zip(chosen.tolist(), values, target.tolist(), right.tolist(),
                             strict=True):
        if sum(text.count(c) for c in MASK_CHARS) % 2 == t:
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
    sub = pc.take(arr, pa.array(rows, type=pa.int64()))
    ok = eligible(sub)
    return np.flatnonzero(ok), (mask_counts(sub)[ok] % 2).astype(np.int8)


def read_masked(arr: pa.Array, sel: np.ndarray, *, gamma: int,
                code_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(bit index, recovered bit) of every selected eligible cell (version-1 plans)."""
    picked = np.flatnonzero(select(sel, gamma))
    keep, parity = read_masked_at(arr, picked)
    s = sel[picked[keep]]
    return bit_index(s, code_bits), parity ^ mask_bit(s)
