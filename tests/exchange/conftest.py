from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from exchange import Catalog, Exchange, MasterKey, ReceiptSigner
from exchange.tables import METADATA
from tests.conftest import active_suite
from tests.exchange.fakes import (
    PROVIDER,
    FakeMasker,
    FakeScanner,
    FakeWatermarker,
    ListAudit,
    StepClock,
    default_decider,
    population,
)

# Keys of the run's crypto suite (QUANGUARD_CRYPTO): `make test-gm` exercises SM4-GCM
# envelopes, SM2 receipts and SM3 digests through every exchange test.
SUITE = active_suite()


@pytest.fixture
def sessions(db_backend: tuple[str, str | None]) -> Iterator[sessionmaker[Session]]:
    """Exchange tables on a fresh SQLite file or PostgreSQL schema."""
    url, schema = db_backend
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    if schema:
        @event.listens_for(engine, "connect")
        def _path(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute(f'SET search_path TO "{schema}"')
            cur.close()
            # committed: a SET inside the connection's first transaction is undone when
            # that transaction rolls back, and the pooled connection would then see public
            dbapi_conn.commit()
    METADATA.create_all(engine)
    yield sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def make_exchange(tmp_path: Path) -> Callable[..., Exchange]:
    def _make(decider: Any = None, **kw: Any) -> Exchange:
        key_dir = tmp_path / "keys"
        return Exchange(
            catalog=Catalog(tmp_path / "data", MasterKey.from_dir(key_dir, SUITE)),
            master=MasterKey.from_dir(key_dir, SUITE),
            signer=ReceiptSigner.from_dir(key_dir, SUITE),
            decider=decider or default_decider(), scanner=FakeScanner(), clock=StepClock(),
            masker=kw.pop("masker", FakeMasker()), watermarker=kw.pop("watermarker", FakeWatermarker()),
            **kw,
        )
    return _make


@pytest.fixture
def registered(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> tuple[Exchange, ListAudit]:
    ex = make_exchange()
    audit = ListAudit()
    with sessions() as s, s.begin():
        ex.register(s, audit, PROVIDER, name="residents", table=population(), key_columns=["id"],
                    bounds={"income": (0.0, 20_000.0), "age": (0.0, 100.0)})
    return ex, audit
