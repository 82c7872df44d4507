"""Few values are masked row by row: the same output as the Arrow kernels, value for value."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize.operators import basic

NAMES = st.one_of(st.sampled_from(["张三", "欧阳娜娜", "司马相如", "王", "欧阳", "诸葛亮", ""]), st.text(max_size=12))


def _both(fn: Callable[..., pa.Array], values: list[str], monkeypatch: pytest.MonkeyPatch,
          *args: object) -> tuple[list[str | None], list[str | None]]:
    arr = pa.array(values, pa.string())
    rows = fn(arr, *args).to_pylist()
    with monkeypatch.context() as m:
        m.setattr(basic, "SMALL", -1)
        arrow = fn(arr, *args).to_pylist()
    return rows, arrow


@settings(deadline=None, max_examples=300)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=20), st.integers(0, 8), st.integers(0, 8),
       st.one_of(st.none(), st.integers(0, 6)), st.sampled_from(["*", "#", "＊"]))
def test_mask_chars_row_by_row_is_the_kernels(values: list[str], prefix: int, suffix: int, fixed: int | None,
                                              char: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        rows, arrow = _both(basic.mask_chars, values, mp, prefix, suffix, char, fixed)
    assert rows == arrow


@settings(deadline=None, max_examples=300)
@given(st.lists(NAMES, min_size=1, max_size=20), st.sampled_from(["*", "＊"]))
def test_mask_name_row_by_row_is_the_kernels(values: list[str], char: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        rows, arrow = _both(basic.mask_name, values, mp, char)
    assert rows == arrow
