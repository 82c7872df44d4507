"""Numeric marks at several magnitudes: the parity of ``round(v / 10**e)``.

A marked cell carries one bit at its level ``e`` (chosen per row and column, see
:mod:`watermark.positions`): the parity of ``round(v / 10**e)`` XOR a keyed mask bit. To
set it the value moves by exactly ``±10**e`` — the digit at that position goes up or down
by one and every other written digit, the sign and the number of decimals stay. Why it
holds up:

* rounding to ``10**f`` with ``f <= e`` leaves ``round(v / 10**e)`` as it was (bar a tie
  at the half-way point), so marks at 10 survive rounding to 10 and marks at 100 survive
  rounding to 100; a small edit (±2 in the last digit) moves ``v`` far less than
  ``10**e / 2`` for the coarser levels;
* either direction flips the parity, so the direction is free: it is chosen to keep the
  value within the usability bound (``10**e <= max_rel_error * |v|`` before and after),
  to keep a coarse identity bucket unchanged, and otherwise to balance the column's sum
  (the residual is carried from batch to batch);
* a digit that moves by ±1 with balanced directions keeps a uniform digit distribution
  uniform, and no digit is ever avoided — the profile only uses levels whose digit is
  spread evenly in the data (:mod:`watermark.profile`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watermark.positions import Positions
from watermark.profile import Numbers, parse_numbers

_ROUNDED = 0.6  # share of zero digits above which a level counts as rounded away


@dataclass(frozen=True)
class LevelResult:
    """A marked numeric column and what marking did to it."""

    array: pa.Array
    marked: int
    changed: int
    shift: float
    residual: float


def _pow10(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.power(10, np.clip(x, 0, 18)).astype(np.int64)
    return out


def _k(num: Numbers, rows: np.ndarray, exps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(round(v / 10**e), exact?) for the cells ``rows`` at exponents ``exps``."""
    d = num.decimals[rows]
    sv = np.where(num.negative[rows], -num.scaled[rows], num.scaled[rows])
    shift = exps + d
    coarse = shift >= 0
    step = _pow10(np.where(coarse, shift, 0))
    k = np.where(coarse, np.floor_divide(sv + step // 2, np.maximum(step, 1)),
                 sv * _pow10(np.where(coarse, 0, -shift)))
    exact = ~coarse & (-shift <= 6) | coarse
    return k, exact


def _eligible(num: Numbers, rows: np.ndarray, exps: np.ndarray, rel: float) -> np.ndarray:
    v = np.abs(num.value[rows])
    eligible: np.ndarray = num.ok[rows] & (v * rel >= np.power(10.0, exps))
    return eligible


def format_numbers(neg: np.ndarray, scaled: np.ndarray, decimals: np.ndarray) -> pa.Array:
    """Decimal text of ``±scaled / 10**decimals`` with exactly ``decimals`` digits after
    the point (vectorised)."""
    text = pc.cast(pa.array(scaled, type=pa.int64()), pa.string())
    out = text
    for d in np.unique(decimals[decimals > 0]).tolist():
        idx = pa.array(np.flatnonzero(decimals == d))
        part = pc.utf8_lpad(pc.take(text, idx), int(d) + 1, "0")
        whole = pc.utf8_slice_codeunits(part, 0, -int(d))
        frac = pc.utf8_slice_codeunits(part, -int(d))
        joined = pc.binary_join_element_wise(whole, frac, ".")
        mask = np.zeros(len(text), dtype=bool)
        mask[idx.to_numpy()] = True
        out = pc.replace_with_mask(out, pa.array(mask), joined)
    if neg.any():
        out = pc.if_else(pa.array(neg), pc.binary_join_element_wise(pa.scalar("-"), out, ""), out)
    return out


def embed_levels(arr: pa.Array, pos: Positions, code: np.ndarray, levels: tuple[int, ...], *,
                 rel: float, bucket: int | None, carry: float = 0.0) -> LevelResult:
    """Mark one string column at ``pos``; ``carry`` is the sum shift of earlier batches."""
    if pos.rows.size == 0 or not levels:
        return LevelResult(arr, 0, 0, 0.0, carry)
    num = parse_numbers(arr)
    plus = np.asarray(pc.fill_null(pc.starts_with(arr, "+"), False)
                      .to_numpy(zero_copy_only=False), dtype=bool)
    exps = np.asarray(levels, dtype=np.int64)[pos.level]
    ok = _eligible(num, pos.rows, exps, rel) & ~plus[pos.rows] & \
        (exps + num.decimals[pos.rows] >= 0)
    rows, exps = pos.rows[ok], exps[ok]
    target = code[pos.bit[ok]] ^ pos.mask[ok]
    coin = pos.coin[ok]
    if rows.size == 0:
        return LevelResult(arr, 0, 0, 0.0, carry)
    k, _ = _k(num, rows, exps)
    flip = (k & 1) != target
    rows, exps, coin = rows[flip], exps[flip], coin[flip]
    marked = int(ok.sum())
    if rows.size == 0:
        return LevelResult(arr, marked, 0, 0.0, carry)
    d = num.decimals[rows]
    scaled = num.scaled[rows]
    neg = num.negative[rows]
    step = _pow10(exps + d)
    unit = np.power(10.0, exps)
    # Direction: +1 moves |v| away from zero. Forced where the other way would leave the
    # usability bound or change the identity bucket; free cells balance the sum.
    down_ok = (scaled - step) * np.power(10.0, -d) * rel >= unit
    if bucket is not None:
        bstep = _pow10(np.maximum(bucket + d, 0)).astype(np.int64)
        same = scaled // bstep
        down_ok &= (scaled - step) // bstep == same
        up_ok = (scaled + step) // bstep == same
    else:
        up_ok = np.ones(rows.size, dtype=bool)
    movable = down_ok | up_ok  # both ways blocked: leave the cell (a wrong vote, rare)
    rows, exps, coin, d, scaled, neg, step, unit = (
        x[movable] for x in (rows, exps, coin, d, scaled, neg, step, unit))
    down_ok, up_ok = down_ok[movable], up_ok[movable]
    if rows.size == 0:
        return LevelResult(arr, marked, 0, 0.0, carry)
    away = np.where(down_ok & up_ok, coin, up_ok)
    sign = np.where(neg, -1.0, 1.0)
    free = down_ok & up_ok
    away = _balance(away, free, unit * sign, carry)
    new_scaled = scaled + np.where(away, step, -step)
    delta = float((np.where(away, 1.0, -1.0) * unit * sign).sum())
    text = format_numbers(neg, new_scaled, d)
    mask = np.zeros(len(arr), dtype=bool)
    mask[rows] = True
    order = np.argsort(rows, kind="stable")
    out = pc.replace_with_mask(arr, pa.array(mask), pc.take(text, pa.array(order)))
    return LevelResult(out, marked, int(rows.size), delta, carry + delta)


def _balance(away: np.ndarray, free: np.ndarray, unit: np.ndarray, carry: float) -> np.ndarray:
    # Flip free directions (each flip moves the sum by 2 units) until the running
    # shift is within one unit of zero.
    away = away.copy()
    for _ in range(3):
        moves = np.where(away, unit, -unit)
        total = carry + float(moves.sum())
        tol = float(np.abs(unit).max())
        if abs(total) <= tol:
            break
        cand = np.flatnonzero(free & (np.sign(moves) == np.sign(total)))
        if cand.size == 0:
            break
        gain = 2 * np.abs(unit[cand])
        take = cand[np.cumsum(gain) <= abs(total)]
        if take.size == 0:
            take = cand[:1]
        away[take] = ~away[take]
    return away


def read_levels(arr: pa.Array, pos: Positions, levels: tuple[int, ...], *,
                rel: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row, level exponent, bit index, recovered bit) of every readable marked cell."""
    if pos.rows.size == 0 or not levels:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z, z.astype(np.int8)
    num = parse_numbers(arr)
    exps = np.asarray(levels, dtype=np.int64)[pos.level]
    ok = _eligible(num, pos.rows, exps, rel)
    k, exact = _k(num, pos.rows, exps)
    ok &= exact
    for e in np.unique(exps[ok]).tolist():
        # A level whose digit is mostly 0 was rounded away: its cells carry nothing.
        at = ok & (exps == e)
        if np.count_nonzero(k[at] % 10 == 0) > _ROUNDED * np.count_nonzero(at):
            ok &= ~at
    bits = ((k[ok] & 1).astype(np.int8)) ^ pos.mask[ok]
    return pos.rows[ok], exps[ok], pos.bit[ok], bits
