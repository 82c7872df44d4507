"""The DP unit is the subject (key value), not the row: sensitivities scale with the rows
one subject may contribute, and rows beyond a declared cap are dropped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy.orm import Session, sessionmaker

from exchange import AggregateQuery, Dataset, Exchange, InvalidDataset
from tests.exchange.fakes import CONSUMER, PROVIDER, ListAudit


def visits(subjects: int, per_subject: int) -> pa.Table:
    ids = [f"s{i:04d}" for i in range(subjects) for _ in range(per_subject)]
    return pa.table({"sid": ids, "clinic": [("东" if i % 2 else "西") for i in range(len(ids))],
                     "cost": [100.0] * len(ids)})


def _register(ex: Exchange, sessions: sessionmaker[Session], table: pa.Table, **kw: Any) -> Dataset:
    with sessions() as s, s.begin():
        return ex.register(s, ListAudit(), PROVIDER, name="visits", table=table,
                           key_columns=["sid"], bounds={"cost": (0.0, 200.0)}, **kw)


@pytest.mark.parametrize(("declared", "k", "truncate"), [(None, 5, False), (2, 2, True), (9, 5, False)])
def test_contributions_recorded(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange], declared: int | None, k: int, truncate: bool) -> None:
    ds = _register(make_exchange(), sessions, visits(300, 5), max_contributions=declared)
    assert (ds.max_contributions, ds.truncate_contributions) == (k, truncate)


def test_noise_scales_with_contributions_and_extra_rows_are_dropped(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    ex = make_exchange()
    _register(ex, sessions, visits(400, 5), max_contributions=2)
    with sessions() as s, s.begin():
        job = ex.aggregate(s, ListAudit(), CONSUMER, dataset="visits",
                           query=AggregateQuery("count", epsilon=1.0)).to_public()
    assert job["noise_scale"]["count"] == pytest.approx(2 / 0.9)  # k / ε_count
    assert abs(job["result"][0]["value"] - 800) < 60  # 400 subjects × 2 kept rows, not 2000


def test_group_size_counts_subjects_not_rows(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    """Three subjects with 40 rows each are three contributors: below min_group_size."""
    ex = make_exchange()
    table = pa.table({"sid": [f"s{i % 3}" for i in range(120)], "clinic": ["东"] * 120,
                      "cost": [1.0] * 120})
    _register(ex, sessions, table, max_contributions=50)
    with sessions() as s, s.begin():
        job = ex.aggregate(s, ListAudit(), CONSUMER, dataset="visits",
                           query=AggregateQuery("count", by=("clinic",), epsilon=1.0)).to_public()
    assert job["result"] == []


def test_unbounded_subjects_must_declare_a_cap(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    with pytest.raises(InvalidDataset, match="declare max rows per subject"):
        _register(make_exchange(), sessions, visits(3, 150))
    with pytest.raises(InvalidDataset, match="between 1 and"):
        _register(make_exchange(), sessions, visits(3, 2), max_contributions=0)
