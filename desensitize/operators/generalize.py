"""``generalize``: replace a value by a coarser one.

    kind=date     to=month → ``2023-05``, to=year → ``2023`` (accepts 2023-05-17,
                  2023/5/17, 20230517, 2023年5月17日, with or without a time)
    kind=age      width=10 → ``30-39``
    kind=address  → the province/city/district prefix (``济南市历下区``)
    kind=amount   width=1000 → ``1000-1999``; or edges=[0, 1000, 10000] → ``1000-9999``,
                  ``>=10000``
    kind=auto     by entity: LOCATION → address, else date
    on_error=redact  an unreadable value becomes empty instead of failing the run
With the default on_error=fail, a value the generalizer cannot read (a non-date
for kind=date) is an :class:`OperatorError` naming the column, never echoing the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from desensitize.errors import OperatorError
from desensitize.operators._base import OpContext, Operator, Param
from desensitize.operators.basic import region_prefix

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
else:  # loaded on first use: declaring an operator needs no Arrow
    from desensitize.operators._libs import np, pa, pc

DATE_RE = (
    r"^\s*(?P<y>(?:19|20)\d{2})(?:[-/.年]?)(?P<m>0?[1-9]|1[0-2])(?:[-/.月]?)"
    r"(?P<d>0?[1-9]|[12]\d|3[01])?(?:日)?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\s*$"
)


def _fail(ctx: OpContext, what: str, bad: pa.Array) -> None:
    count = len(bad) - pc.sum(bad).as_py() if len(bad) else 0
    if count:
        raise OperatorError(
            f"generalize: {count} value(s) of column {ctx.column or '?'} are not {what}"
        )


def _date(values: pa.Array, to: str, ctx: OpContext) -> pa.Array:
    parts = pc.extract_regex(values, DATE_RE)
    ok = pc.is_valid(parts)
    _fail(ctx, "dates", ok)
    year = pc.struct_field(parts, [0])
    if to == "year":
        return year
    month = pc.utf8_lpad(pc.struct_field(parts, [1]), 2, "0")
    return pc.binary_join_element_wise(year, month, "-")


def _numbers(values: pa.Array, what: str, ctx: OpContext) -> np.ndarray:
    text = pc.utf8_trim_whitespace(values)
    ok = pc.match_substring_regex(text, r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
    _fail(ctx, what, ok)
    return np.asarray(pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False))


def _band(nums: np.ndarray, width: float) -> list[str]:
    lo = np.floor(nums / width) * width
    if float(width).is_integer():
        return [f"{int(a)}-{int(a + width - 1)}" for a in lo]
    return [f"{a:g}-{a + width:g}" for a in lo]


def _edges(nums: np.ndarray, edges: list[float]) -> list[str]:
    edges = sorted(float(e) for e in edges)
    idx = np.searchsorted(np.asarray(edges), nums, side="right")
    out = []
    for i in idx:
        if i == 0:
            out.append(f"<{edges[0]:g}")
        elif i == len(edges):
            out.append(f">={edges[-1]:g}")
        else:
            hi = edges[i]
            top = f"{hi - 1:g}" if float(hi).is_integer() and float(edges[i - 1]).is_integer() else f"<{hi:g}"
            out.append(f"{edges[i - 1]:g}-{top}")
    return out


_NUMBER_RE = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$"


def _generalize(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    kind = params["kind"]
    if kind == "auto":
        kind = "address" if ctx.entity == "LOCATION" else "date"
    if params["on_error"] == "redact" and kind != "address":
        # unreadable values become empty instead of failing the run
        ok = pc.is_valid(pc.extract_regex(values, DATE_RE)) if kind == "date" else (
            pc.match_substring_regex(values, _NUMBER_RE))
        if kind == "age":
            nums = pc.cast(pc.if_else(ok, pc.utf8_trim_whitespace(values), "0"), pa.float64())
            ok = pc.and_(ok, pc.and_(pc.greater_equal(nums, 0), pc.less_equal(nums, 150)))
        good = values.filter(ok)
        done = _by_kind(good, kind, params, ctx) if len(good) else pa.array([], pa.string())
        blank = pa.array([""] * len(values), pa.string())
        return pc.replace_with_mask(blank, ok, done) if len(good) else blank
    return _by_kind(values, kind, params, ctx)


def _by_kind(values: pa.Array, kind: str, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    if kind == "date":
        return _date(values, params["to"], ctx)
    if kind == "address":
        return region_prefix(values)
    width = params["width"]
    if width is not None and width <= 0:
        raise OperatorError("generalize: width must be positive")
    if kind == "age":
        nums = _numbers(values, "ages", ctx)
        if (nums < 0).any() or (nums > 150).any():
            raise OperatorError(f"generalize: column {ctx.column or '?'} has ages outside 0..150")
        return pa.array(_band(nums, width or 10), pa.string())
    nums = _numbers(values, "amounts", ctx)
    if params["edges"]:
        if not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in params["edges"]):
            raise OperatorError("generalize: edges must be numbers")
        return pa.array(_edges(nums, list(params["edges"])), pa.string())
    return pa.array(_band(nums, width or 1000), pa.string())


GENERALIZE = Operator(
    "generalize",
    "Coarsen a date, age, address or amount.",
    _generalize,
    (
        Param("kind", (str,), "auto", "date | age | address | amount | auto",
              ("auto", "date", "age", "address", "amount")),
        Param("to", (str,), "month", "date precision: month | year", ("month", "year")),
        Param("width", (int, float), None, "band width (age: 10, amount: 1000)"),
        Param("edges", (list,), None, "explicit amount bucket edges"),
        Param("on_error", (str,), "fail", "fail: unreadable value is an error; redact: it becomes empty",
              ("fail", "redact")),
    ),
)
