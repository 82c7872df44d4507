"""The watermark of an extract is bounded by the dataset's grade: the exchange names the
grade to its Watermarker port (a stricter bound for more sensitive data)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from exchange import Exchange
from tests.exchange.fakes import (
    CONSUMER,
    PROVIDER,
    FakeMasker,
    FakeWatermarker,
    ListAudit,
    population,
)


def test_extract_names_the_dataset_grade_to_the_watermark(
        sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    wm = FakeWatermarker()
    ex = make_exchange(masker=FakeMasker(None), watermarker=wm)
    with sessions() as s, s.begin():
        ds = ex.register(s, ListAudit(), PROVIDER, name="residents", table=population(50),
                         key_columns=["id"])
    with sessions() as s, s.begin():
        _, out = ex.delivery.extract(s, ListAudit(), CONSUMER, dataset="residents")
    assert out is not None and ds.grade
    assert wm.grades == [ds.grade]
