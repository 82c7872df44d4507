"""A statistician's eye: does a marked column look different from the unmarked one?

Two-sample chi-square (digits, days, mask counts, categories) and Kolmogorov–Smirnov
(values) tests, written out here so the tests and the bench need no statistics library.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from watermark.dates import parse_dates
from watermark.masked import MASK_CHARS


def _gammaq(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) (Numerical Recipes, 6.2)."""
    if x <= 0:
        return 1.0
    gln = math.lgamma(a)
    if x < a + 1:
        ap, total, delta = a, 1.0 / a, 1.0 / a
        for _ in range(1000):
            ap += 1
            delta *= x / ap
            total += delta
            if abs(delta) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - gln))
    b = x + 1 - a
    c = 1 / 1e-300
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - gln) * h


def chi2_two_sample(a: Iterable[object], b: Iterable[object]) -> tuple[float, float]:
    """(statistic, p-value) of the 2 x K contingency test of two category samples."""
    ca, cb = Counter(a), Counter(b)
    cats = sorted(set(ca) | set(cb), key=str)
    na, nb = sum(ca.values()), sum(cb.values())
    if len(cats) < 2 or not na or not nb:
        return 0.0, 1.0
    stat = 0.0
    for k in cats:
        tot = ca[k] + cb[k]
        for obs, n in ((ca[k], na), (cb[k], nb)):
            exp = tot * n / (na + nb)
            stat += (obs - exp) ** 2 / exp
    df = len(cats) - 1
    return stat, _gammaq(df / 2, stat / 2)


def ks_two_sample(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(D, asymptotic p-value) of the two-sample Kolmogorov–Smirnov test."""
    a, b = np.sort(a[~np.isnan(a)]), np.sort(b[~np.isnan(b)])
    if a.size == 0 or b.size == 0:
        return 0.0, 1.0
    grid = np.concatenate([a, b])
    d = float(np.max(np.abs(np.searchsorted(a, grid, side="right") / a.size
                            - np.searchsorted(b, grid, side="right") / b.size)))
    ne = a.size * b.size / (a.size + b.size)
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    if lam < 1e-3:
        return d, 1.0
    p = 2 * sum((-1) ** (j - 1) * math.exp(-2 * j * j * lam * lam) for j in range(1, 101))
    return d, min(max(p, 0.0), 1.0)


def _floats(values: Sequence[str | None]) -> np.ndarray:
    out = []
    for v in values:
        try:
            out.append(float(v))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            out.append(math.nan)
    return np.array(out)


def _digit(values: np.ndarray, e: int) -> list[int]:
    ok = values[~np.isnan(values)]
    digits: list[int] = (np.floor(np.abs(ok) / 10.0 ** e + 0.5).astype(np.int64) % 10).tolist()
    return digits


def _distinct(values: Sequence[str | None]) -> list[str]:
    # Masked values and pseudonyms are rendered per value (the same value alike on every
    # row), so the unit of a test is the distinct value: on a table where people have
    # several rows, a row-level test rejects two unmarked copies as often as a marked one.
    return sorted({v for v in values if v})


def unmarked_masked_copy(values: list[str | None], key: bytes = b"unmarked") -> list[str | None]:
    """What the ``mask`` operator writes with ``variants: true``: each value in its form A
    or, by a keyed coin of the value, with one more character hidden."""
    import hashlib

    import pyarrow as pa

    from desensitize.operators.basic import hide_one_more

    more = hide_one_more(pa.array(values, pa.string())).to_pylist()
    return [m if v and hashlib.blake2b(v.encode(), key=key).digest()[0] & 1 else v
            for v, m in zip(values, more, strict=True)]


def column_tests(kind: str, before: Sequence[str | None], after: Sequence[str | None],
                 levels: tuple[int, ...] = ()) -> dict[str, float]:
    """p-values of every test of one marked column (marked copy vs the unmarked one; for a
    masked column the unmarked one is :func:`unmarked_masked_copy`)."""
    out: dict[str, float] = {}
    if kind == "numeric":
        x, y = _floats(before), _floats(after)
        out["KS values"] = ks_two_sample(x, y)[1]
        out["χ² last digit"] = chi2_two_sample((v[-1] for v in before if v),
                                               (v[-1] for v in after if v))[1]
        out["χ² first digit"] = chi2_two_sample((v.lstrip("-+0.")[:1] for v in before if v),
                                                (v.lstrip("-+0.")[:1] for v in after if v))[1]
        for e in levels:
            out[f"χ² digit at 10^{e}"] = chi2_two_sample(_digit(x, e), _digit(y, e))[1]
    elif kind == "date":
        import pyarrow as pa

        da, db = parse_dates(pa.array(before, pa.string())), parse_dates(pa.array(after, pa.string()))
        out["KS day number"] = ks_two_sample(da.days[da.ok].astype(float),
                                             db.days[db.ok].astype(float))[1]
        out["χ² day of month"] = chi2_two_sample(da.day[da.ok].tolist(), db.day[db.ok].tolist())[1]
        out["χ² weekday"] = chi2_two_sample((da.days[da.ok] % 7).tolist(),
                                            (db.days[db.ok] % 7).tolist())[1]
    elif kind in ("masked", "pattern"):
        if kind == "pattern":
            before, after = _distinct(before), _distinct(after)

        def masks(vs: Sequence[str | None]) -> list[int]:
            return [sum(v.count(c) for c in MASK_CHARS) for v in vs if v]

        def where(vs: Sequence[str | None]) -> list[str]:
            return ["".join("m" if ch in MASK_CHARS else "v" for ch in v) for v in vs if v]
        out["χ² mask count"] = chi2_two_sample(masks(before), masks(after))[1]
        out["KS mask count"] = ks_two_sample(np.array(masks(before), dtype=float),
                                             np.array(masks(after), dtype=float))[1]
        out["χ² hidden positions"] = chi2_two_sample(where(before), where(after))[1]
    elif kind == "pseudonym":
        out["χ² value multiplicities"] = chi2_two_sample(
            Counter(Counter(v for v in before if v).values()).elements(),
            Counter(Counter(v for v in after if v).values()).elements())[1]
        before, after = _distinct(before), _distinct(after)
        out["χ² free character"] = chi2_two_sample((v[-1] for v in before if v),
                                                   (v[-1] for v in after if v))[1]
        out["χ² next-to-last character"] = chi2_two_sample((v[-2:-1] for v in before if v),
                                                           (v[-2:-1] for v in after if v))[1]
    else:
        out["χ² categories"] = chi2_two_sample(before, after)[1]
    return out
