"""Agrawal–Kiernan style marks in the last significant digit of decimal text.

A selected cell carries one codeword bit in its LAST digit by quantisation: bit 0 puts
the digit in {1, 2, 3}, bit 1 in {6, 7, 8} (the half is XORed with a keyed mask bit, so
unmarked values give random votes). The reader takes ``digit >= 5``. Why these digits:

* only the last written digit moves, never with a carry: sign, length, decimals count
  and leading zeros are kept byte for byte;
* a later change of ±1 in that digit (rounding noise, a deliberate attack) cannot leave
  the half, and a marked digit is never 0, so a spreadsheet that drops trailing zeros
  does not shorten a marked value.

A cell is eligible when its text is a plain decimal with at least ``min_digits``
significant digits; marking keeps eligibility (the last digit never becomes 0).
A marked digit moves by at most 8 units of last place. Within its half the digit is
shifted to balance directions, so that a column's sum moves by at most about one unit of its
last place (the residual is carried from batch to batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_DECIMAL = r"^[+-]?[0-9]+(\.[0-9]+)?$"
_LUT = np.array([[1, 1, 2, 3, 3, 3, 3, 3, 3, 3],
                 [6, 6, 6, 6, 6, 6, 7, 8, 8, 8]], dtype=np.int8)


@dataclass(frozen=True)
class DigitView:
    """Per cell: eligible?, last digit, byte position of that digit, unit of last place."""

    eligible: np.ndarray
    digit: np.ndarray
    last_pos: np.ndarray
    ulp: np.ndarray


def as_string(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The column as a plain ``string`` array (numbers are cast to their text)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.string():
        arr = pc.cast(arr, pa.string())
    return arr


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32)[arr.offset: arr.offset + len(arr) + 1]
    data = (np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None
            else np.zeros(0, dtype=np.uint8))
    return offsets, data


def digit_view(arr: pa.Array, min_digits: int, idx: np.ndarray) -> DigitView:
    """Parse the last digit of the cells ``idx`` of a string array (vectorised).

    ``last_pos`` indexes the data buffer of ``arr`` itself, so the digit can be
    rewritten in place.
    """
    n = idx.size
    offsets, data = _buffers(arr)
    z = np.zeros(n, dtype=np.int64)
    if n == 0:
        return DigitView(np.zeros(0, dtype=bool), z.astype(np.int8), z, z.astype(float))
    sub = pc.take(arr, pa.array(idx))
    fmt_np = np.asarray(pc.fill_null(pc.match_substring_regex(sub, _DECIMAL), False)
                        .to_numpy(zero_copy_only=False), dtype=bool)
    sig = pc.utf8_length(pc.replace_substring_regex(
        pc.replace_substring_regex(sub, r"[+\-.]", ""), r"^0+", ""))
    sig_np = pc.fill_null(sig, 0).to_numpy(zero_copy_only=False)
    length = pc.fill_null(pc.utf8_length(sub), 0).to_numpy(zero_copy_only=False)
    dot = pc.fill_null(pc.find_substring(sub, "."), -1).to_numpy(zero_copy_only=False)
    decimals = np.where(dot >= 0, length - dot - 1, 0)
    last_pos = np.maximum(offsets[idx + 1].astype(np.int64) - 1, 0)
    digit = z.astype(np.int8)
    if data.size:
        raw = data[np.minimum(last_pos, data.size - 1)].astype(np.int16) - 48
        digit = np.clip(raw, 0, 9).astype(np.int8)
    eligible = fmt_np & (sig_np >= min_digits)
    ulp = np.power(10.0, -decimals.astype(np.float64))
    return DigitView(eligible, digit, last_pos, ulp)


def select(sel: np.ndarray, gamma: int) -> np.ndarray:
    """Cells chosen to carry a bit: about one in ``gamma``."""
    chosen: np.ndarray = (sel % np.uint64(gamma)) == 0
    return chosen


def bit_index(sel: np.ndarray, code_bits: int) -> np.ndarray:
    """Which codeword bit a selected cell carries."""
    return ((sel >> np.uint64(20)) % np.uint64(code_bits)).astype(np.int64)


def mask_bit(sel: np.ndarray) -> np.ndarray:
    """Keyed bit XORed onto the carried bit."""
    return (sel >> np.uint64(63)).astype(np.int8)


@dataclass(frozen=True)
class NumericResult:
    """A marked column and what marking did to it."""

    array: pa.Array
    marked: int
    changed: int
    shift: float
    residual: float


def embed_numeric(arr: pa.Array, sel: np.ndarray, code: np.ndarray, *, gamma: int,
                  min_digits: int, carry: float = 0.0) -> NumericResult:
    """Mark one string column; ``carry`` is the sum shift left over from earlier batches."""
    picked = np.flatnonzero(select(sel, gamma))
    view = digit_view(arr, min_digits, picked)
    keep = view.eligible
    chosen = picked[keep]
    if chosen.size == 0:
        return NumericResult(arr, 0, 0, 0.0, carry)
    s = sel[chosen]
    target = code[bit_index(s, code.size)] ^ mask_bit(s)
    old = view.digit[keep]
    new = _LUT[target, old].astype(np.int8)
    ulp = view.ulp[keep]
    new = _balance(new, old, target, ulp, carry)
    delta = float(((new.astype(np.float64) - old) * ulp).sum())
    _offsets, data = _buffers(arr)
    out = data.copy()
    out[view.last_pos[keep]] = (new + 48).astype(np.uint8)
    bufs = arr.buffers()
    marked = pa.Array.from_buffers(pa.string(), len(arr),
                                   [bufs[0], bufs[1], pa.py_buffer(out.tobytes())],
                                   null_count=arr.null_count, offset=arr.offset)
    return NumericResult(marked, int(chosen.size), int((new != old).sum()), delta,
                         carry + delta)


def _balance(new: np.ndarray, old: np.ndarray, target: np.ndarray, ulp: np.ndarray,
             carry: float) -> np.ndarray:
    # Move digits one step inside their half (never leaving it) until the running
    # sum shift is within about one unit of last place of zero.
    new = new.copy()
    for _ in range(2):
        total = carry + float(((new.astype(np.float64) - old) * ulp).sum())
        if abs(total) <= float(ulp.max()):
            break
        step = -1 if total > 0 else 1
        lo = np.where(target == 1, 6, 1)
        hi = np.where(target == 1, 8, 3)
        movable = np.flatnonzero((new + step >= lo) & (new + step <= hi))
        if movable.size == 0:
            break
        budget = abs(total)
        take = movable[np.cumsum(ulp[movable]) <= budget]
        new[take] += step
    return new


def read_numeric(arr: pa.Array, sel: np.ndarray, *, gamma: int, min_digits: int,
                 code_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(bit index, recovered bit) of every selected eligible cell of a suspect column."""
    picked = np.flatnonzero(select(sel, gamma))
    view = digit_view(arr, min_digits, picked)
    s = sel[picked[view.eligible]]
    bits = (view.digit[view.eligible] >= 5).astype(np.int8) ^ mask_bit(s)
    return bit_index(s, code_bits), bits


def column_sum(arr: pa.Array) -> tuple[int, float]:
    """(count, sum) of the numeric cells of a string column."""
    try:
        vals = pc.cast(arr, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        fmt = pc.fill_null(pc.match_substring_regex(arr, _DECIMAL), False)
        vals = pc.cast(pc.filter(arr, fmt), pa.float64())
    total = pc.sum(vals).as_py()
    return len(vals) - vals.null_count, float(total or 0.0)
