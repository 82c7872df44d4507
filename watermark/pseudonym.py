"""Marks in pseudonyms and fakes: a keyed choice between two equivalent renderings.

A keyed pseudonym (``hash``: ``ID-3f9a0c...``) or a fake identifier (``fake``: a phone
number, an ID number, a bank card) is a pseudo-random string: its last free character
is uniform over its alphabet. For a value's *body* (the value without that character,
and without a check character after it) two keyed characters ``c0 != c1`` are equally
likely renderings; a cell chosen to carry a bit is written with ``c_bit`` (and its check
character recomputed: ID numbers, Luhn card numbers). The character stays uniform, every
value keeps its count, and the choice depends on the body only — the same input gives
the same output everywhere in one copy, so joins inside the copy hold.

Which bodies carry bits, and which codeword bit, is keyed by the body: no row key is
needed to find the marks. Reading takes the character: ``c0`` → 0, ``c1`` → 1, anything
else (an unmarked body) → no vote.

Forms (``Carrier.form``): ``hex`` (lower-case hex pseudonyms, auto-detected), ``digit``
(last digit free), ``luhn`` (digit before a Luhn check digit), ``id18`` (the 17th
character of an 18-character resident ID number, before its check character).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watermark.hashing import mix, row_hashes, subkey

_U = np.uint64
_ALPHABET = {"hex": "0123456789abcdef", "digit": "0123456789", "luhn": "0123456789",
             "id18": "0123456789"}
_CHECKED = ("luhn", "id18")
HASHED = r"^([A-Za-z]{1,8}[-_:])?[0-9a-f]{12,64}$"
_FORM_RE = {"hex": HASHED, "digit": r"^[0-9A-Za-z+-]*[0-9]{8,}$",
            "luhn": r"^[0-9]{13,19}$", "id18": r"^[0-9]{17}[0-9Xx]$"}
_MIN_BODY = 8
_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ID_CHECK = "10X98765432"


def _share(arr: pa.Array, pattern: str) -> float:
    text = pc.drop_null(arr)
    if len(text) == 0:
        return 0.0
    hits = pc.sum(pc.match_substring_regex(text, pattern)).as_py() or 0
    return float(hits) / len(text)


def _check_ok(values: list[str], form: str) -> float:
    # Only values of the form's shape (ASCII digits, its length) are checked; any other
    # (a short code, full-width digits) counts against the form.
    shape = re.compile(_FORM_RE[form])
    good = sum(shape.fullmatch(v) is not None and _check_char(v[:-1], form) == v[-1].upper()
               for v in values)
    return good / max(len(values), 1)


def pseudonym_form(arr: pa.Array, *, explicit: bool) -> str | None:
    """The form a column's pseudonyms take: ``hex`` is recognised by the values; the
    others (fakes look like real identifiers) only for columns named as pseudonyms."""
    # A hex digest of 12 or more characters has a letter in nearly every value; a column
    # of digit strings is not hex, whatever its width.
    if _share(arr, HASHED) >= 0.95 and _share(arr, "[a-f]") >= 0.5:
        return "hex"
    if not explicit:
        return None
    sample = [v for v in pc.drop_null(arr).slice(0, 2000).to_pylist() if v]
    for form in ("id18", "luhn", "digit"):
        if _share(arr, _FORM_RE[form]) >= 0.95 and (
                form == "digit" or _check_ok(sample, form) >= 0.95):
            return form
    return None


def _check_char(body: str, form: str) -> str:
    digits = [int(c) for c in body]
    if form == "id18":
        return _ID_CHECK[int((np.array(digits) * _ID_WEIGHTS).sum()) % 11]
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def _index(chars: pa.Array, alphabet: str) -> np.ndarray:
    # Position of every character in the alphabet (-1: not in it).
    found = pc.index_in(chars, value_set=pa.array(list(alphabet)))
    return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _check_chars(heads: pa.Array, form: str) -> pa.Array:
    """The check character of every digit string (vectorised when they share a length)."""
    values = heads.to_pylist()
    width = {len(v) for v in values}
    if len(width) != 1:
        return pa.array([_check_char(v, form) for v in values], type=pa.string())
    d = (np.frombuffer("".join(values).encode("ascii"), dtype=np.uint8)
         .reshape(len(values), -1).astype(np.int64) - 48)
    if form == "id18":
        table = np.array(list(_ID_CHECK))
        return pa.array(table[(d * _ID_WEIGHTS[: d.shape[1]]).sum(axis=1) % 11].tolist(),
                        type=pa.string())
    doubled = d[:, ::-1].copy()
    doubled[:, 0::2] *= 2
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    check = (10 - doubled.sum(axis=1) % 10) % 10
    return pc.cast(pa.array(check), pa.string())


def _split(arr: pa.Array, form: str) -> tuple[pa.Array, pa.Array, np.ndarray]:
    # (body, free character, readable?) of every cell.
    text = pc.fill_null(arr, "")
    tail = 2 if form in _CHECKED else 1
    body = pc.utf8_slice_codeunits(text, 0, -tail)
    char = pc.utf8_slice_codeunits(text, -tail, -tail + 1 if tail > 1 else None)
    ok = np.asarray(pc.fill_null(pc.match_substring_regex(text, _FORM_RE[form]), False)
                    .to_numpy(zero_copy_only=False), dtype=bool)
    ok &= pc.fill_null(pc.utf8_length(body), 0).to_numpy(zero_copy_only=False) >= _MIN_BODY
    return body, char, ok


def _choices(body: pa.Array, form: str, secret: bytes, salt: np.uint64, gamma: int,
             code_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                      np.ndarray]:
    # (selected rows, bit index, mask, c0 index, c1 index) of the selected bodies.
    sel = mix(row_hashes(body, subkey(secret, "pseudonym")), salt)
    rows = np.flatnonzero(sel % _U(gamma) == 0)
    s = sel[rows]
    size = _U(len(_ALPHABET[form]))
    c0 = ((s >> _U(24)) % size).astype(np.int64)
    c1 = (c0 + 1 + ((s >> _U(40)) % (size - _U(1))).astype(np.int64)) % int(size)
    return (rows, ((s >> _U(8)) % _U(code_bits)).astype(np.int64),
            (s >> _U(63)).astype(np.int8), c0, c1)


def embed_pseudonyms(arr: pa.Array, form: str, code: np.ndarray, secret: bytes,
                     salt: np.uint64, *, gamma: int) -> tuple[pa.Array, int, int]:
    """Mark one pseudonym column; returns (array, marked cells, changed cells)."""
    body, char, ok = _split(arr, form)
    rows, bit, mask, c0, c1 = _choices(body, form, secret, salt, gamma, code.size)
    keep = ok[rows]
    rows, bit, mask, c0, c1 = rows[keep], bit[keep], mask[keep], c0[keep], c1[keep]
    if rows.size == 0:
        return arr, 0, 0
    alphabet = _ALPHABET[form]
    want = np.where((code[bit] ^ mask) == 1, c1, c0)
    changed = _index(pc.take(char, pa.array(rows)), alphabet) != want
    if not changed.any():
        return arr, int(rows.size), 0
    rows = rows[changed]
    heads = pc.binary_join_element_wise(
        pc.take(body, pa.array(rows)),
        pc.take(pa.array(list(alphabet)), pa.array(want[changed])), "")
    if form in _CHECKED:
        heads = pc.binary_join_element_wise(heads, _check_chars(heads, form), "")
    mask_rows = np.zeros(len(arr), dtype=bool)
    mask_rows[rows] = True
    return pc.replace_with_mask(arr, pa.array(mask_rows), heads), int(keep.sum()), \
        int(rows.size)


def read_pseudonyms(arr: pa.Array, form: str, secret: bytes, salt: np.uint64, *, gamma: int,
                    code_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, bit index, recovered bit) of every marked cell written in ``c0`` or ``c1``."""
    body, char, ok = _split(arr, form)
    rows, bit, mask, c0, c1 = _choices(body, form, secret, salt, gamma, code_bits)
    idx = _index(pc.take(char, pa.array(rows)), _ALPHABET[form])
    keep = ok[rows] & ((idx == c0) | (idx == c1))
    return rows[keep], bit[keep], ((idx[keep] == c1[keep]).astype(np.int8) ^ mask[keep])
