"""Differentially private aggregates over a dataset table (DuckDB + OpenDP).

Guards, in order: the query may only group/filter on the dataset's allowed group columns
(never key columns or identifiers), only aggregate numeric columns with public bounds,
values are clamped to those bounds, groups with fewer than ``min_group_size`` rows are
dropped before noise, the rest pass OpenDP's noisy threshold, and every released number
carries noise. Rows never leave this module: only group labels and noisy numbers.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from exchange.catalog import Dataset
from exchange.errors import InvalidQuery, Refused
from exchange.noise import laplace_count, laplace_vector, threshold_counts
from exchange.numbers import EPSILON_MIN, MAX_BINS, check_epsilon, check_fraction

AGGREGATES = ("count", "sum", "mean", "quantile", "histogram")
MAX_GROUP_BY = 3
# share of ε spent on the number of suppressed groups: the true number would tell whether a
# one-person group exists (filter to it and read "1 suppressed" vs "0"), so it is noised too
SUPPRESSED_SHARE = 0.1
_QUANTILE_BINS = 64


@dataclass(frozen=True)
class AggregateQuery:
    """One aggregate: ``agg`` of ``column`` grouped by ``by`` where col == value for all ``where``."""

    agg: str
    column: str | None = None
    by: tuple[str, ...] = ()
    where: tuple[tuple[str, str], ...] = ()
    epsilon: float = 0.5
    q: float = 0.5
    bins: int = 10

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"agg": self.agg, "column": self.column, "by": list(self.by),
                               "where": {k: v for k, v in self.where}, "epsilon": self.epsilon}
        if self.agg == "quantile":
            out["q"] = self.q
        if self.agg == "histogram":
            out["bins"] = self.bins
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AggregateQuery:
        where = data.get("where") or {}
        return cls(
            agg=str(data["agg"]), column=data.get("column"), by=tuple(data.get("by") or ()),
            where=tuple((str(k), str(v)) for k, v in sorted(where.items())),
            epsilon=float(data.get("epsilon", 0.5)), q=float(data.get("q", 0.5)),
            bins=int(data.get("bins", 10)),
        )


@dataclass(frozen=True)
class AggregateResult:
    rows: list[dict[str, Any]]
    suppressed_groups: int
    epsilon_spent: float
    delta_spent: float
    noise_scale: dict[str, float] = field(default_factory=dict)
    threshold: float = 0.0


def validate(ds: Dataset, q: AggregateQuery, *, epsilon_cap: float | None = None,
             epsilon_min: float = EPSILON_MIN) -> None:
    """Refuse queries the dataset does not allow. Raises InvalidQuery or Refused.

    ε must lie in ``(epsilon_min, epsilon_cap]`` (see :mod:`exchange.numbers`)."""
    if q.agg not in AGGREGATES:
        raise InvalidQuery(f"unknown aggregate {q.agg!r} (known: {' '.join(AGGREGATES)})")
    check_epsilon(q.epsilon, minimum=epsilon_min)
    if q.agg not in ds.computations:
        raise Refused(f"dataset {ds.name!r} does not allow {q.agg!r} (allowed: {' '.join(ds.computations)})")
    check_epsilon(q.epsilon, minimum=epsilon_min, cap=epsilon_cap)
    if len(q.by) > MAX_GROUP_BY:
        raise InvalidQuery(f"at most {MAX_GROUP_BY} group-by columns")
    if len(set(q.by)) != len(q.by):
        raise InvalidQuery("group-by columns repeat")
    for col in (*q.by, *(k for k, _ in q.where)):
        ds.column(col)
        if col in ds.key_columns:
            raise Refused(f"column {col!r} is a key column: it cannot be grouped or filtered on")
        if col not in ds.group_columns:
            raise Refused(
                f"column {col!r} is not an allowed group/filter column of {ds.name!r} "
                f"(allowed: {' '.join(ds.group_columns) or 'none'})"
            )
    if q.agg == "count":
        if q.column is not None:
            ds.column(q.column)
        return
    if q.column is None:
        raise InvalidQuery(f"{q.agg} needs --column")
    info = ds.column(q.column)
    if not info.numeric:
        raise InvalidQuery(f"column {q.column!r} is not numeric")
    if q.column not in ds.bounds:
        raise Refused(f"column {q.column!r} has no declared public bounds; {q.agg} is not possible")
    if q.agg == "quantile":
        check_fraction("quantile q", q.q)
    if q.agg == "histogram" and not 1 <= q.bins <= MAX_BINS:
        raise InvalidQuery(f"histogram bins must be between 1 and {MAX_BINS}")
    lo, hi = ds.bounds[q.column]
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):  # registered before the range check
        raise Refused(f"column {q.column!r} has unusable bounds {lo!r}:{hi!r}; re-register it")


_local = threading.local()


def _cursor() -> duckdb.DuckDBPyConnection:
    """A cursor on this thread's in-memory DuckDB (opening a database costs ~50 ms)."""
    base = getattr(_local, "con", None)
    if base is None:
        base = _local.con = duckdb.connect()
    return base.cursor()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _grouped(table: pa.Table, ds: Dataset, q: AggregateQuery, extra_bins: int) -> list[tuple[Any, ...]]:
    """(group values..., [bin], rows, clamped sum, subjects) per group, in DuckDB.

    When a subject has more rows than the dataset's ``max_contributions``, the extra rows
    are dropped first (after the filter), so the sensitivity the noise assumes holds.
    """
    # Every number and filter value goes in as a parameter, never pasted into the text;
    # parameters are bound in the order their ``?`` appear: select list, then where.
    select: list[str] = [_ident(c) for c in q.by]
    params: list[Any] = []
    value = "NULL"
    value_params: list[Any] = []
    if q.column is not None and q.column in ds.bounds:
        lo, hi = ds.bounds[q.column]
        value = f"least(greatest(CAST({_ident(q.column)} AS DOUBLE), CAST(? AS DOUBLE)), CAST(? AS DOUBLE))"
        value_params = [float(lo), float(hi)]
        if extra_bins:
            width = (hi - lo) / extra_bins
            select.append(f"least(CAST(floor(({value} - CAST(? AS DOUBLE)) / CAST(? AS DOUBLE)) AS INTEGER), "
                          f"CAST(? AS INTEGER))")
            params.extend([*value_params, float(lo), float(width), int(extra_bins) - 1])
    sum_params = list(value_params)
    where = " AND ".join(f"CAST({_ident(c)} AS VARCHAR) = ?" for c, _ in q.where) or "TRUE"
    where_params = [v for _, v in q.where]
    if q.agg == "count" and q.column is not None:
        where += f" AND {_ident(q.column)} IS NOT NULL"
    elif q.agg != "count":
        where += f" AND {_ident(q.column or '')} IS NOT NULL"
    keys = ", ".join(select)
    ordinals = ", ".join(str(i + 1) for i in range(len(select)))  # GROUP BY the select list
    subject = _ident(ds.key_columns[0]) if ds.key_columns else None
    people = f"count(DISTINCT {subject})" if subject and ds.max_contributions > 1 else "count(*)"
    source = f"(SELECT * FROM t WHERE {where})"
    source_params: list[Any] = list(where_params)
    if subject and ds.truncate_contributions:
        source = (f"(SELECT * FROM t WHERE {where} QUALIFY row_number() OVER "
                  f"(PARTITION BY {subject}) <= CAST(? AS INTEGER))")
        source_params.append(int(ds.max_contributions))
    sql = (f"SELECT {keys + ', ' if keys else ''}count(*) AS n, sum({value}) AS s, "
           f"{people} AS people FROM {source} AS src" + (f" GROUP BY {ordinals}" if keys else ""))
    # order of the ``?``: select list (bins), sum(value), the source's where (+ truncation)
    params = [*params, *sum_params, *source_params]
    con = _cursor()
    try:
        con.register("t", table)
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _label(ds: Dataset, q: AggregateQuery, values: tuple[Any, ...]) -> dict[str, Any]:
    group = {c: v for c, v in zip(q.by, values)}
    if q.agg == "histogram":
        lo, hi = ds.bounds[q.column or ""]
        width = (hi - lo) / q.bins
        b = int(values[len(q.by)])
        group["bin"] = [lo + b * width, lo + (b + 1) * width]
    return group


def run_aggregate(
    table: pa.Table, ds: Dataset, q: AggregateQuery, *, min_group_size: int, delta: float
) -> AggregateResult:
    """Compute ``q`` on ``table`` with clamping, suppression and OpenDP noise.

    ``epsilon_spent``/``delta_spent`` are what OpenDP's privacy maps report; the budget
    is charged with them by the caller.
    """
    nb = q.bins if q.agg == "histogram" else (_QUANTILE_BINS if q.agg == "quantile" else 0)
    grouped = _grouped(table, ds, q, nb if q.agg in ("histogram", "quantile") else 0)
    nkey = len(q.by) + (1 if q.agg == "histogram" else 0)
    # quantile: first aggregate per group, keep the per-bin counts aside
    bins_of: dict[str, dict[int, float]] = {}
    counts: dict[str, float] = {}
    sums: dict[str, float] = {}
    people: dict[str, float] = {}
    for row in grouped:
        key = json.dumps(list(row[:nkey]), default=str, ensure_ascii=False)
        n, s, p = float(row[-3]), float(row[-2] or 0.0), float(row[-1])
        counts[key] = counts.get(key, 0.0) + n
        sums[key] = sums.get(key, 0.0) + s
        # per-bin subjects summed over bins may count a subject twice (quantiles only)
        people[key] = people.get(key, 0.0) + p
        if q.agg == "quantile":
            bins_of.setdefault(key, {})[int(row[len(q.by)])] = n
    k_max = ds.max_contributions if ds.key_columns else 1
    kept = {k: v for k, v in counts.items() if people[k] >= min_group_size}
    eps_supp = q.epsilon * SUPPRESSED_SHARE
    eps_main = q.epsilon - eps_supp
    eps_count = eps_main if q.agg in ("count", "histogram") else eps_main / 2.0
    rel = threshold_counts(kept, epsilon=eps_count, delta=delta, min_group_size=min_group_size,
                           contributions=k_max)
    keys = sorted(rel.values)
    # groups seen (noised, sensitivity 1) minus groups released (already private)
    seen = laplace_count(len(counts), epsilon=eps_supp, sensitivity=k_max)
    suppressed = max(0, seen.value - len(keys))
    eps_total = rel.epsilon + seen.epsilon
    scales = {"count": rel.scale, "suppressed_groups": seen.scale}
    rows: list[dict[str, Any]] = []
    if q.agg in ("count", "histogram"):
        values = [max(0.0, rel.values[k]) for k in keys]
    elif q.agg in ("sum", "mean"):
        lo, hi = ds.bounds[q.column or ""]
        vec = laplace_vector([sums[k] for k in keys], sensitivity=k_max * max(abs(lo), abs(hi)),
                             epsilon=eps_main - eps_count)
        eps_total += vec.epsilon
        scales["value"] = vec.scale
        if q.agg == "sum":
            values = vec.values
        else:
            values = [min(hi, max(lo, s / max(rel.values[k], 1.0))) for k, s in zip(keys, vec.values)]
    else:
        lo, hi = ds.bounds[q.column or ""]
        flat = [bins_of[k].get(b, 0.0) for k in keys for b in range(_QUANTILE_BINS)]
        vec = laplace_vector(flat, sensitivity=float(k_max), epsilon=eps_main - eps_count)
        eps_total += vec.epsilon
        scales["value"] = vec.scale
        values = []
        for i, _ in enumerate(keys):
            hist = [max(0.0, v) for v in vec.values[i * _QUANTILE_BINS:(i + 1) * _QUANTILE_BINS]]
            values.append(_quantile_from_hist(hist, lo, hi, q.q))
    for k, v in zip(keys, values):
        rows.append({"group": _label(ds, q, tuple(json.loads(k))), "value": float(v)})
    return AggregateResult(rows, suppressed, eps_total, rel.delta, scales, rel.threshold)


def _quantile_from_hist(hist: list[float], lo: float, hi: float, q: float) -> float:
    """Post-process a noisy histogram into the q-quantile (linear within the bin)."""
    total = sum(hist)
    if total <= 0:
        return (lo + hi) / 2.0
    width = (hi - lo) / len(hist)
    target, acc = q * total, 0.0
    for i, c in enumerate(hist):
        if acc + c >= target and c > 0:
            return lo + width * (i + (target - acc) / c)
        acc += c
    return hi
