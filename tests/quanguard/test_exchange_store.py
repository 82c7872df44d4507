"""The exchange's use cases on both stores (SQLite and PostgreSQL via migration 0006)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import inspect

from exchange import BudgetExhausted, JobNotFound, verify_receipt
from exchange.tables import METADATA
from quanguard.auth import Principal
from quanguard.container import Container
from quanguard.usecases import exchange as uc

PROV = Principal(id="p-1", name="p-1", role="provider", org="市卫健委")
BANK = Principal(id="b-1", name="b-1", role="consumer", org="某银行")
LAB = Principal(id="l-1", name="l-1", role="consumer", org="某研究所")
MGR = Principal(id="m-1", name="m-1", role="manager", org="市大数据局")


def _table(n: int = 400) -> pa.Table:
    return pa.table({"member": [f"M{i:06d}" for i in range(n)],
                     "sex": ["男" if i % 2 else "女" for i in range(n)],
                     "income": [float(i % 300) for i in range(n)]})


def test_migration_creates_exactly_the_exchange_tables(any_container: Container) -> None:
    names = set(inspect(any_container.engine).get_table_names())
    assert {t.name for t in METADATA.sorted_tables} <= names


def test_seams_revision_upgrades_a_database_made_before_it(any_container: Container) -> None:
    """A database at 0006_exchange (before the seams) gets 0007_exchange_seams' columns
    and table from ``migrate``."""
    from sqlalchemy import text

    from quanguard.db import migrate

    engine = any_container.engine
    with engine.begin() as conn:  # take the database back to what 0006 made
        conn.execute(text("DROP TABLE exchange_job_requests"))
        for table, cols in (("exchange_jobs", ("request_digest", "request_size", "expires_at")),
                            ("exchange_datasets", ("family", "declared_grade", "subject_sketch"))):
            for col in cols:
                conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {col}"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0006_exchange' "
                          "WHERE version_num = '0007_exchange_seams'"))
    assert "request_digest" not in {c["name"] for c in inspect(engine).get_columns("exchange_jobs")}
    migrate(engine)
    insp = inspect(engine)
    assert {"request_digest", "request_size", "expires_at"} <= {c["name"] for c in insp.get_columns("exchange_jobs")}
    assert {"family", "declared_grade", "subject_sketch"} <= {
        c["name"] for c in insp.get_columns("exchange_datasets")}
    assert "exchange_job_requests" in insp.get_table_names()
    with engine.connect() as conn:
        assert "0007_exchange_seams" in {r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))}


def test_aggregate_budget_and_tenancy_on_each_store(any_container: Container) -> None:
    c = any_container
    meta = uc.register(c, PROV, None, name="members", table=_table(), key_columns=["member"],
                       bounds={"income": (0.0, 300.0)})
    assert meta["grade"] == "L2" and meta["rows"] == 400
    job: dict[str, Any] = uc.aggregate(c, BANK, None, dataset="members",
                       query={"agg": "sum", "column": "income", "by": ["sex"], "epsilon": 0.8})
    assert job["status"] == "done" and len(job["result"]) == 2
    verify_receipt(job["receipt"], result=job["result"],
                   public_key=bytes.fromhex(uc.receipt_key(c)["public_key"]))
    assert uc.job(c, BANK, None, job["job"])["result"] == job["result"]
    with pytest.raises(JobNotFound):
        uc.job(c, LAB, None, job["job"])
    uc.aggregate(c, BANK, None, dataset="members", query={"agg": "count", "epsilon": 1.2})
    with pytest.raises(BudgetExhausted):
        uc.aggregate(c, BANK, None, dataset="members", query={"agg": "count", "epsilon": 0.1})
    assert uc.budget(c, BANK, None, dataset="members")["epsilon_left"] == pytest.approx(0.0)
    assert [j["job"] for j in uc.jobs(c, PROV)][-1] == job["job"]
    assert len(uc.jobs(c, MGR)) == 2 and uc.jobs(c, LAB) == []
