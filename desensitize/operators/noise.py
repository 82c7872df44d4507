"""``noise``: bounded numeric noise, deterministic per (key, value).

``x`` becomes ``x + u * bound`` with ``u`` in [-1, 1) drawn from HMAC(key, x), and
``bound = scale`` (absolute) or ``ratio * |x|`` (relative, default 0.1).  The number of decimals
of the input is kept unless ``decimals`` is given; ``min``/``max`` clamp the result
(e.g. ``min: 0`` for counts).  This hides exact values; it is not differential
privacy (use the exchange's DP aggregates for that).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from desensitize.errors import OperatorError
from desensitize.operators._base import OpContext, Operator, Param
from desensitize.operators.crypto import hmac_many, per_distinct

if TYPE_CHECKING:
    import pyarrow as pa
else:  # loaded on first use: declaring an operator needs no Arrow
    from desensitize.operators._libs import pa


def _noise(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    scale, ratio = params["scale"], params["ratio"]
    if scale is not None and ratio is not None:
        raise OperatorError("noise: give exactly one of scale (absolute) or ratio (relative)")
    if scale is None and ratio is None:
        ratio = 0.1
    if (scale is not None and scale < 0) or (ratio is not None and not 0 <= ratio <= 10):
        raise OperatorError("noise: scale must be >= 0 and ratio in [0, 10]")
    key = ctx.key("noise")
    lo, hi, fixed = params["min"], params["max"], params["decimals"]

    def run(items: list[str]) -> list[str]:
        out = []
        digests = hmac_many(key, [raw.strip().encode() for raw in items])
        for raw, d in zip(items, digests, strict=True):
            text = raw.strip()
            try:
                x = float(text)
            except ValueError:
                raise OperatorError(
                    f"noise: a value of column {ctx.column or '?'} is not a number"
                ) from None
            if not math.isfinite(x):
                raise OperatorError(f"noise: column {ctx.column or '?'} has a non-finite number")
            u = int.from_bytes(d[:8], "big") / 2**63 - 1.0
            bound = scale if scale is not None else ratio * abs(x)
            y = x + u * bound
            if lo is not None:
                y = max(y, lo)
            if hi is not None:
                y = min(y, hi)
            decimals = fixed if fixed is not None else (
                len(text.split(".", 1)[1]) if "." in text and "e" not in text.lower() else 0
            )
            out.append(f"{y:.{decimals}f}")
        return out

    return per_distinct(values, run)


NOISE = Operator(
    "noise",
    "Bounded, keyed, deterministic numeric noise.",
    _noise,
    (
        Param("scale", (int, float), None, "absolute bound of the noise"),
        Param("ratio", (int, float), None, "bound relative to |value| (0.1 = ±10 %)"),
        Param("decimals", (int,), None, "decimals written (default: as the input)"),
        Param("min", (int, float), None, "lower clamp"),
        Param("max", (int, float), None, "upper clamp"),
    ),
    keyed=True,
)
