"""Numeric and masked marks keep the text format; hashing canonicalises keys."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watermark.hashing import canonical_keys, codeword, column_salt, mix, row_hashes
from watermark.masked import MASK_CHARS, embed_masked, read_masked
from watermark.numeric import embed_numeric, read_numeric
from watermark.positions import Positions

decimals = st.builds(
    lambda sign, intpart, frac: f"{sign}{intpart}{'.' + frac if frac else ''}",
    st.sampled_from(["", "-", "+"]),
    st.from_regex(r"[0-9]{1,9}", fullmatch=True),
    st.one_of(st.just(""), st.from_regex(r"[0-9]{1,4}", fullmatch=True)),
)


def _sel(n: int, seed: int = 0) -> np.ndarray:
    keys = pa.array([f"k{seed}-{i}" for i in range(n)])
    return mix(row_hashes(keys, b"s"), column_salt(b"s", "c"))


@settings(max_examples=200, deadline=None)
@given(st.lists(decimals, min_size=1, max_size=60), st.integers(0, 3))
def test_only_the_last_digit_moves_and_the_format_is_kept(values: list[str], seed: int) -> None:
    arr = pa.array(values, type=pa.string())
    code = codeword(b"s", "r", 64)
    res = embed_numeric(arr, _sel(len(values), seed), code, gamma=1, min_digits=1)
    out = res.array.to_pylist()
    assert len(out) == len(values)
    for before, after in zip(values, out, strict=True):
        assert len(after) == len(before)
        assert after[:-1] == before[:-1]  # sign, leading zeros, point, decimals kept
        if after != before:
            assert after[-1] in "123678"
    assert res.changed == sum(a != b for a, b in zip(values, out, strict=True))


def test_marked_bits_are_read_back_and_survive_plus_minus_one() -> None:
    n = 2000
    values = [f"{v:.2f}" for v in np.random.default_rng(3).uniform(100, 999, n)]
    arr = pa.array(values)
    sel = _sel(n)
    code = codeword(b"s", "r", 64)
    marked = embed_numeric(arr, sel, code, gamma=2, min_digits=3).array
    idx, bits = read_numeric(marked, sel, gamma=2, min_digits=3, code_bits=64)
    assert idx.size > 800
    from watermark.numeric import select

    chosen = np.flatnonzero(select(sel, 2))
    # the keyed mask bit is XORed on at embedding and off at reading
    assert (bits == code[idx]).all()
    # ±1 on the last digit of every marked value changes no recovered bit.
    bumped = [v[:-1] + str(int(v[-1]) + (1 if i % 2 else -1)) if i in set(chosen.tolist())
              else v for i, v in enumerate(marked.to_pylist())]
    idx2, bits2 = read_numeric(pa.array(bumped), sel, gamma=2, min_digits=3, code_bits=64)
    assert (bits2 == code[idx2]).all()


def test_column_mean_moves_less_than_a_thousandth() -> None:
    rng = np.random.default_rng(9)
    for values in ([f"{v:.2f}" for v in rng.uniform(10, 99, 5000)],
                   [f"{v}" for v in rng.integers(100, 999, 5000)],
                   [f"{v:.2f}" for v in rng.choice([19.99, 20.00, 9.95, 100.50], 5000)]):
        arr = pa.array(values)
        res = embed_numeric(arr, _sel(len(values)), codeword(b"s", "r", 64), gamma=1,
                            min_digits=2)
        before = np.array(values, dtype=float)
        after = np.array(res.array.to_pylist(), dtype=float)
        assert res.changed > 1000
        assert abs(after.mean() - before.mean()) / before.mean() < 1e-3
        assert abs(after.sum() - before.sum() - res.shift) < 1e-6 * len(values)


@pytest.mark.parametrize("value,kind", [
    ("0", "zero digits"), ("0.00", "zero digits"), ("12", "2 digits"), ("1e5", "exponent"),
    ("12,345", "grouping"), ("", "empty"), ("abc", "text"), ("-0.0", "zero digits"),
])
def test_ineligible_values_are_never_touched(value: str, kind: str) -> None:
    arr = pa.array([value] * 50)
    res = embed_numeric(arr, _sel(50), codeword(b"s", "r", 64), gamma=1, min_digits=3)
    assert res.array.to_pylist() == [value] * 50, kind
    assert res.marked == 0


def test_nulls_stay_null() -> None:
    arr = pa.array(["123.45", None, "678.90"] * 20)
    res = embed_numeric(arr, _sel(60), codeword(b"s", "r", 64), gamma=1, min_digits=3)
    assert res.array.null_count == 20
    assert [v is None for v in res.array.to_pylist()] == [v is None for v in arr.to_pylist()]


@pytest.mark.parametrize("raw,canon", [
    ("  ABC-01 ", "abc-01"), ("000123", "123"), ("123.0", "123"), ("+7", "7"),
    ("0", "0"), ("1.50", "1.5"), ("-007.10", "-7.1"), ("R000123", "r000123"),
    ("2024-01-05 00:00:00", "2024-01-05"), ("2024-01-05", "2024-01-05"),
    ("2024-01-05 10:00:00", "2024-01-05 10:00:00"),
])
def test_canonical_keys_survive_spreadsheet_round_trips(raw: str, canon: str) -> None:
    assert canonical_keys(pa.array([raw])).to_pylist() == [canon]


masked_values = st.builds(
    lambda left, n, right: left + "*" * n + right,
    st.text(alphabet="0123456789张王李abc", min_size=0, max_size=6),
    st.integers(1, 8),
    st.text(alphabet="0123456789张王李abc", min_size=0, max_size=6),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(masked_values, min_size=1, max_size=50))
def test_masked_marks_only_hide_more_and_are_read_back(values: list[str]) -> None:
    arr = pa.array(values, type=pa.string())
    sel = _sel(len(values))
    code = codeword(b"s", "r", 64)
    res = embed_masked(arr, sel, code, gamma=1)
    out = res.array.to_pylist()
    for before, after in zip(values, out, strict=True):
        assert len(after) == len(before)
        for b, a in zip(before, after, strict=True):
            assert a == b or a in MASK_CHARS  # nothing is ever revealed
        assert sum(a != b for a, b in zip(before, after, strict=True)) <= 1
        if after != before:
            assert len(after) - sum(after.count(c) for c in MASK_CHARS) >= 1
    idx, bits = read_masked(res.array, sel, gamma=1, code_bits=64)
    agree = int((bits == code[idx]).sum())
    # every flippable cell agrees; unflippable ones are the only disagreements
    assert idx.size - agree <= res.unflippable


# -- version-2 marks: several magnitudes, dates -----------------------------------------

def _positions(n: int, levels: int, seed: int = 0) -> Positions:
    from watermark.positions import positions

    keys = pa.array([f"k{seed}-{i}" for i in range(n)])
    return positions([row_hashes(keys, b"s")], column_salt(b"s", "c"), periods=[1],
                     code_bits=64, levels=levels)


@settings(max_examples=200, deadline=None)
@given(st.lists(decimals, min_size=1, max_size=60), st.integers(0, 3))
def test_level_marks_keep_the_format_the_bound_and_read_back(values: list[str], seed: int) -> None:
    from watermark.levels import embed_levels, read_levels

    arr = pa.array(values, type=pa.string())
    levels = (-1, 0, 1)
    pos = _positions(len(values), len(levels), seed)
    code = codeword(b"s", "r", 64)
    res = embed_levels(arr, pos, code, levels, rel=0.02, bucket=None)
    out = res.array.to_pylist()
    for before, after in zip(values, out, strict=True):
        if before == after:
            continue
        assert not before.startswith("+") and before.lstrip("-")[:1] != "0" or \
            before.lstrip("-").startswith("0.")  # never a signed-plus or zero-padded cell
        assert ("." in before) == ("." in after)
        assert len(before.partition(".")[2]) == len(after.partition(".")[2])
        assert before.startswith("-") == after.startswith("-")
        step = abs(float(after) - float(before))
        assert min(abs(step - 10.0 ** e) for e in levels) < 1e-6
        assert step <= 0.02 * abs(float(before)) + 1e-9
    rows, _exps, idx, bits = read_levels(res.array, pos, levels, rel=0.02)
    moved = {i for i, (a, b) in enumerate(zip(values, out, strict=True)) if a != b}
    for r, i, b in zip(rows.tolist(), idx.tolist(), bits.tolist(), strict=True):
        if r in moved:
            assert b == code[i]  # every moved cell now carries its bit


@pytest.mark.parametrize("text,moved", [
    ("2024-03-01", "2024-03-02"), ("2024-02-29", "2024-02-28"), ("2024/3/9", None),
    ("2023-12-31 08:15:00", "2023-12-30 08:15:00"), ("2024年05月07日", None),
])
def test_date_marks_stay_in_their_month_and_format(text: str, moved: str | None) -> None:
    from watermark.dates import embed_dates, parse_dates, read_dates
    from watermark.positions import Positions

    arr = pa.array([text])
    d = parse_dates(arr)
    assert d.ok[0]
    want = 1 - int(d.days[0] & 1)  # the other parity: the date must move
    pos = Positions(np.array([0]), np.array([0]), np.array([0]), np.array([0]),
                    np.array([0], dtype=np.int8), np.array([False]))
    out, marked, changed = embed_dates(arr, pos, np.array([want], dtype=np.uint8))
    assert marked == 1 and changed == 1
    new = out.to_pylist()[0]
    if moved is not None:
        assert new == moved
    after = parse_dates(out)
    assert after.ok[0] and (after.year[0], after.month[0]) == (d.year[0], d.month[0])
    assert abs(int(after.days[0]) - int(d.days[0])) == 1
    assert read_dates(out, pos)[2].tolist() == [want]
