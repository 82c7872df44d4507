from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy.orm import Session, sessionmaker

from exchange import Catalog, DatasetExists, IntegrityFailure, InvalidDataset, MasterKey
from exchange.crypto import MASTER_KEY_FILE
from exchange.errors import KeyFileError
from tests.conftest import active_suite
from tests.exchange.fakes import PROVIDER, FakeScanner, StepClock, population

SUITE = active_suite()


def test_master_key_file_is_private(tmp_path: Path) -> None:
    MasterKey.from_dir(tmp_path, SUITE)
    assert (tmp_path / MASTER_KEY_FILE).stat().st_mode & 0o777 == 0o600
    os.chmod(tmp_path / MASTER_KEY_FILE, 0o644)
    with pytest.raises(KeyFileError):
        MasterKey.from_dir(tmp_path, SUITE)


def test_stored_encrypted_and_round_trips(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "data", MasterKey.from_dir(tmp_path / "k", SUITE))
    table = population(300)
    with sessions() as s, s.begin():
        ds = cat.register(s, name="residents", table=table, owner=PROVIDER,
                          grading=FakeScanner().grade_table(table), now=StepClock().now(),
                          key_columns=["id"], bounds={"income": (0, 20000)})
    assert ds.rows == 300 and ds.digest
    blob = next((tmp_path / "data").iterdir()).read_bytes()
    assert b"3701" not in blob and "居民".encode() not in blob and b"PAR1" not in blob
    with sessions() as s:
        assert cat.load_table(s, "residents").equals(table)
        got = cat.get(s, "residents")
    assert got.grade == "L3" and got.key_columns == ("id",)
    # identifiers and keys are never group columns; numeric columns neither
    assert set(got.group_columns) == {"district", "sex"}
    assert "rows" not in got.to_public() or got.to_public()["rows"] == 300


def test_tampered_ciphertext_is_detected(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "data", MasterKey.from_dir(tmp_path / "k", SUITE), cache_size=0)
    with sessions() as s, s.begin():
        cat.register(s, name="d", table=population(50), owner=PROVIDER,
                     grading=FakeScanner().grade_table(population(50)), now=StepClock().now(),
                     key_columns=["id"])
    f = next((tmp_path / "data").iterdir())
    raw = bytearray(f.read_bytes())
    raw[40] ^= 1
    f.write_bytes(bytes(raw))
    with sessions() as s, pytest.raises(IntegrityFailure):
        cat.load_table(s, "d")


def test_other_master_key_cannot_open(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "data", MasterKey.from_dir(tmp_path / "k", SUITE))
    with sessions() as s, s.begin():
        cat.register(s, name="d", table=population(50), owner=PROVIDER,
                     grading=FakeScanner().grade_table(population(50)), now=StepClock().now(),
                     key_columns=["id"])
    thief = Catalog(tmp_path / "data", MasterKey.from_dir(tmp_path / "other", SUITE))
    with sessions() as s, pytest.raises(IntegrityFailure):
        thief.load_table(s, "d")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "../etc"}, "dataset name"),
    ({"key_columns": ["nope"]}, "key column"),
    ({"bounds": {"district": (0, 1)}}, "non-numeric"),
    ({"bounds": {"income": (5, 5)}}, "below"),
    ({"computations": ["rows"]}, "unknown computation"),
    ({"group_columns": ["id"], "key_columns": ["id"]}, "key column"),
    ({"table": pa.table({"a": pa.array([], pa.int64())})}, "no rows"),
])
def test_register_rejects(sessions: sessionmaker[Session], tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    cat = Catalog(tmp_path / "data", MasterKey.from_dir(tmp_path / "k", SUITE))
    args = {"name": "d", "table": population(20)} | kwargs
    with sessions() as s, s.begin(), pytest.raises(InvalidDataset, match=message):
        cat.register(s, owner=PROVIDER, grading=FakeScanner().grade_table(args["table"]),
                     now=StepClock().now(), **args)


def test_duplicate_name(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "data", MasterKey.from_dir(tmp_path / "k", SUITE))
    t = population(20)
    with sessions() as s, s.begin():
        cat.register(s, name="d", table=t, owner=PROVIDER, grading=FakeScanner().grade_table(t),
                     now=StepClock().now(), key_columns=["id"])
    with sessions() as s, s.begin(), pytest.raises(DatasetExists):
        cat.register(s, name="d", table=t, owner=PROVIDER, grading=FakeScanner().grade_table(t),
                     now=StepClock().now(), key_columns=["id"])
