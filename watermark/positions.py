"""Where the marks of one column are: which rows, which level, which codeword bit.

Every row identity (primary key, quasi-identifier sets; see :mod:`watermark.identity`) is
mixed with a keyed column salt into a 64-bit selector per cell. A source selects a cell
when its selector is 0 modulo its period (:func:`periods`: the whole copy carries about
one mark per ``gamma`` cells); a cell selected by an earlier source belongs to that source.
Bits of the selector then choose the level (the coarsest level for most marks, so
rounding and last-digit edits leave them), the codeword bit, a keyed mask bit (XORed on, so an
unmarked value gives a random vote) and a coin for the direction of a move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from watermark.hashing import mix

_U = np.uint64


@dataclass(frozen=True)
class Positions:
    """Marked cells of one column (rows ascending)."""

    rows: np.ndarray  # int64 row index in the batch
    source: np.ndarray  # int64 index of the source that placed the mark
    level: np.ndarray  # int64 index into the carrier's levels (0 when it has none)
    bit: np.ndarray  # int64 codeword bit carried
    mask: np.ndarray  # int8 keyed bit XORed onto the carried bit
    coin: np.ndarray  # bool: preferred direction of a move (up)


def _level_index(sel: np.ndarray, levels: int, version: int) -> np.ndarray:
    if levels <= 1:
        return np.zeros(sel.size, dtype=np.int64)
    top = levels - 1
    if version < 3:  # plans of earlier releases: the coarsest level takes half the marks
        u = ((sel >> _U(8)) & _U(3)).astype(np.int64)
        if levels == 2:
            return np.where(u < 2, top, 0)
        return np.where(u < 2, top, np.where(u == 2, top - 1, top - 2))
    # The coarsest level takes 3/4 of the marks (2 levels) or 5/8 (3 levels): it survives
    # rounding to its step and edits of the last digit; finer levels keep small values
    # and the digits below it marked too.
    u = ((sel >> _U(8)) & _U(7)).astype(np.int64)
    if levels == 2:
        return np.where(u < 6, top, 0)
    return np.where(u < 5, top, np.where(u < 7, top - 1, top - 2))


def periods(roles: list[str], gamma: int) -> list[int]:
    """Selection period of every source: a primary key takes half of the marks (it
    survives every edit but its own removal), the quasi-identifier sets share the rest."""
    qi = sum(r != "key" for r in roles)
    if qi == 0 or len(roles) == qi:
        return [gamma * max(len(roles), 1)] * len(roles)
    return [2 * gamma if r == "key" else 2 * gamma * qi for r in roles]


def positions(hashes: list[np.ndarray | None], salt: np.uint64, *, periods: list[int],
              code_bits: int, levels: int, version: int = 3) -> Positions:
    """Cells of one column marked by the given identities (``None``: source unusable)."""
    n = next((h.size for h in hashes if h is not None), 0)
    owner = np.full(n, -1, dtype=np.int64)
    chosen = np.zeros(n, dtype=np.uint64)
    for k, h in enumerate(hashes):
        if h is None:
            continue
        sel = mix(h, salt)
        take = ((sel % _U(periods[k])) == 0) & (owner < 0)
        owner[take] = k
        chosen[take] = sel[take]
    rows = np.flatnonzero(owner >= 0)
    sel = chosen[rows]
    return Positions(
        rows=rows, source=owner[rows], level=_level_index(sel, levels, version),
        bit=((sel >> _U(20)) % _U(code_bits)).astype(np.int64),
        mask=(sel >> _U(63)).astype(np.int8),
        coin=((sel >> _U(11)) & _U(1)).astype(bool),
    )
