from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gmcrypto import Suite
from monitor.checkpoint import Signer, load_or_create_signer
from monitor.events import Actor, AuditEvent, EventDecision
from monitor.store import AuditStore, create_schema
from monitor.trail import Trail

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_available() -> bool:
    try:
        eng = sa.create_engine(PG_URL)
        with eng.connect():
            pass
        eng.dispose()
        return True
    except sa.exc.SQLAlchemyError:
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A fresh audit schema on SQLite (file, WAL) or PostgreSQL (own schema)."""
    if request.param == "sqlite":
        eng = sa.create_engine(f"sqlite:///{tmp_path / 'audit.db'}")
        create_schema(eng)
        yield eng
        eng.dispose()
        return
    if not _pg_available():
        pytest.skip("PostgreSQL is not reachable")
    schema = f"t_monitor_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    eng = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    create_schema(eng)
    yield eng
    eng.dispose()
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


@pytest.fixture
def signer(tmp_path: Path, suite: Suite) -> Signer:
    return load_or_create_signer(tmp_path / "keys", suite)


@pytest.fixture
def store(suite: Suite) -> AuditStore:
    return AuditStore(suite)


@pytest.fixture
def trail(store: AuditStore, signer: Signer) -> Trail:
    return Trail(store, signer)


T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture
def make_event() -> Callable[..., AuditEvent]:
    counter = iter(range(10**9))

    def make(**kw: object) -> AuditEvent:
        i = next(counter)
        base: dict[str, object] = {
            "ts": T0 + timedelta(minutes=i),
            "actor": Actor(f"user{i % 3}", ["consumer", "provider", "manager"][i % 3],
                        ["市大数据局", "市卫健委"][i % 2]),
            "action": ["read_masked", "export", "query"][i % 3],
            "reporter": "quanguard",
            "dataset": f"ds{i % 4}",
            "fields": ("name", "phone"),
            "grade": ["L1", "L2", "L3", "L4"][i % 4],
            "rows": i * 10,
            "purpose": f"purpose {i}",
            "decision": EventDecision(["allow", "deny"][i % 2], f"rule{i % 2}", "v1"),
        }
        base.update(kw)
        return AuditEvent(**base)  # type: ignore[arg-type]

    return make


@pytest.fixture
def filled(engine: sa.Engine, store: AuditStore, make_event: Callable[..., AuditEvent]
           ) -> Callable[[int], None]:
    def fill(n: int) -> None:
        with Session(engine) as s, s.begin():
            store.append(s, [make_event() for _ in range(n)])

    return fill
