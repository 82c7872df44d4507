"""The ranges of the numbers a caller may give the exchange (issue 11, finding 10).

Public bounds of a numeric column are finite, ordered, and inside ``[-BOUND_LIMIT,
BOUND_LIMIT]``: beyond that, sums of a few thousand clamped values lose every digit a
noisy answer could carry, and ``inf``/``nan`` make every sum a NaN. ε is finite and in
``(epsilon_min, epsilon_cap]`` (the floor keeps the noise scale, sensitivity / ε, a finite
number; ``5e-324`` would make it ``inf``); δ is in ``(0, 1)``. Violations raise
:class:`InvalidQuery` / :class:`InvalidDataset` naming the field.
"""

from __future__ import annotations

import math

from exchange.errors import InvalidDataset, InvalidQuery, Refused

BOUND_LIMIT = 1e12
EPSILON_MIN = 1e-3
MAX_BINS = 100


def check_bounds(column: str, lo: object, hi: object) -> tuple[float, float]:
    """``(lo, hi)`` as floats, or InvalidDataset naming the column's bounds."""
    try:
        low, high = float(lo), float(hi)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidDataset(f"bounds of {column!r}: {lo!r}:{hi!r} are not numbers") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InvalidDataset(f"bounds of {column!r} must be finite numbers, got {low!r}:{high!r}")
    if abs(low) > BOUND_LIMIT or abs(high) > BOUND_LIMIT:
        raise InvalidDataset(
            f"bounds of {column!r} must lie within ±{BOUND_LIMIT:g}, got {low:g}:{high:g}")
    if not low < high:
        raise InvalidDataset(f"bounds of {column!r}: low {low:g} must be below high {high:g}")
    return low, high


def check_epsilon(epsilon: object, *, minimum: float = EPSILON_MIN,
                  cap: float | None = None) -> float:
    """ε as a float in ``(minimum, cap]``: InvalidQuery (400) below the floor or not a
    number, Refused (403) above the policy's cap."""
    try:
        eps = float(epsilon)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidQuery(f"epsilon must be a number, got {epsilon!r}") from None
    if not math.isfinite(eps) or eps <= minimum:
        raise InvalidQuery(f"epsilon must be a finite number above {minimum:g}, got {eps!r}")
    if cap is not None and eps > cap:
        raise Refused(f"epsilon {eps:g} exceeds the per-dataset cap {cap:g}")
    return eps


def check_delta(delta: object) -> float:
    """δ of a DP query: a number strictly between 0 and 1."""
    return check_fraction("delta", delta)


def check_fraction(name: str, value: object) -> float:
    """A number strictly between 0 and 1 (e.g. a quantile)."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidQuery(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and 0.0 < v < 1.0):
        raise InvalidQuery(f"{name} must be in (0, 1), got {v!r}")
    return v
