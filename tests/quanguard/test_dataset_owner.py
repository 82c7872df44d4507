"""The dataset-owner look-up of the alert rules keeps only committed, lasting answers."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quanguard.dataset_owner import catalog_owner


def _engine() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE exchange_datasets (name TEXT PRIMARY KEY, owner_org TEXT)")
    return engine


def _add(s: Session, name: str, org: str) -> None:
    s.execute(sa.text("INSERT INTO exchange_datasets VALUES (:n, :o)"), {"n": name, "o": org})


def test_an_owner_read_in_a_rolled_back_registration_is_forgotten() -> None:
    engine = _engine()
    with Session(engine) as s:
        s.begin()
        _add(s, "人口库", "甲局")
        assert catalog_owner(s, "人口库") == "甲局"
        s.rollback()
    with Session(engine) as s, s.begin():
        _add(s, "人口库", "乙局")
    with Session(engine) as s, s.begin():
        assert catalog_owner(s, "人口库") == "乙局"


def test_a_dataset_registered_after_a_miss_is_found_at_once() -> None:
    engine = _engine()
    with Session(engine) as s, s.begin():
        assert catalog_owner(s, "社保库") is None
    with Session(engine) as s, s.begin():
        _add(s, "社保库", "人社局")
    with Session(engine) as s, s.begin():
        assert catalog_owner(s, "社保库") == "人社局"


def test_a_committed_owner_is_answered_without_asking_the_database_again() -> None:
    engine = _engine()
    with Session(engine) as s, s.begin():
        _add(s, "医保库", "医保局")
    with Session(engine) as s, s.begin():
        assert catalog_owner(s, "医保库") == "医保局"
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with Session(engine) as s, s.begin():
        assert catalog_owner(s, "医保库") == "医保局"
    assert not [q for q in statements if "exchange_datasets" in q]


def test_no_catalog_table_means_no_owner() -> None:
    engine = sa.create_engine("sqlite://")
    with Session(engine) as s, s.begin():
        assert catalog_owner(s, "人口库") is None
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE exchange_datasets (name TEXT PRIMARY KEY, owner_org TEXT)")
        conn.exec_driver_sql("INSERT INTO exchange_datasets VALUES ('人口库', '甲局')")
    with Session(engine) as s, s.begin():
        assert catalog_owner(s, "人口库") == "甲局"
