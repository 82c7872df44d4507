"""Shared set-up of the exchange benchmarks: an Exchange on a temporary SQLite store."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from exchange import Catalog, Exchange, Grading, Grant, MasterKey, ReceiptSigner
from exchange.tables import METADATA

RESULTS = Path(__file__).parent / "results"


class AllowAll:
    def __init__(self, **obligations: Any) -> None:
        self.obligations = obligations

    def decide(self, caller: Any, action: str, **_: Any) -> Grant:
        return Grant("allow", "bench", "bench", "bench", self.obligations)


class FixedGrade:
    def grade_table(self, table: Any) -> Grading:
        return Grading("L2", {}, frozenset())


class NoAudit:
    def record(self, **_: Any) -> None:
        pass


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def make_exchange(**obligations: Any) -> tuple[Exchange, sessionmaker[Session], Path]:
    root = Path(tempfile.mkdtemp(prefix="qg-bench-"))
    engine = create_engine(f"sqlite:///{root / 'bench.db'}")
    METADATA.create_all(engine)
    master = MasterKey.from_dir(root / "keys")
    ex = Exchange(catalog=Catalog(root / "data", master), master=master,
                  signer=ReceiptSigner.from_dir(root / "keys"), decider=AllowAll(**obligations),
                  scanner=FixedGrade(), clock=Clock())
    return ex, sessionmaker(engine), root


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return path
