"""Masking keeps the input format: CSV (encodings), TSV, JSON Lines, Parquet, XLSX."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from desensitize.keys import Keyring
from desensitize.pipeline import run_mask
from desensitize.plan import ColumnInfo, build_plan
from desensitize.profiles import load_profiles
from desensitize.tableio import open_table, open_writer, read_table
from tests.conftest import active_suite

POLICY = Path(__file__).resolve().parents[2] / "policies" / "masking.yaml"
ROWS = {"编号": ["001", "002", "003"], "姓名": ["张三", "欧阳娜娜", "李四"],
        "手机": ["13812345678", "13987654321", ""], "事项": ["居住证", "社保", "户籍"]}
COLUMNS = [ColumnInfo("编号"), ColumnInfo("姓名", "PERSON", "L3"), ColumnInfo("手机", "PHONE_NUMBER", "L3"),
           ColumnInfo("事项")]


@pytest.mark.parametrize(("name", "encoding"), [("t.csv", "gb18030"), ("t.csv", "utf-8-sig"), ("t.tsv", "utf-8"),
                                                ("t.jsonl", None), ("t.parquet", None), ("t.xlsx", None)])
def test_mask_round_trips_every_format(tmp_path: Path, name: str, encoding: str | None) -> None:
    src = tmp_path / name
    with open_writer(src, encoding=encoding) as w:
        w.write(pa.table(ROWS))
    source = open_table(src)
    out = tmp_path / f"out{src.suffix}"
    plan = build_plan(COLUMNS, load_profiles(POLICY).get(None))
    with open_writer(out, source.format, source.encoding) as w:
        result = run_mask(source.iter_batches(2), w, plan, keyring=Keyring(b"\x01" * 32, active_suite()))
    masked = open_table(out)
    assert masked.format == source.format and masked.encoding == source.encoding
    got = read_table(out)
    assert got.column_names == list(ROWS) and got.num_rows == 3 == result.stats.rows
    assert got.column("编号").to_pylist() == ROWS["编号"] and got.column("事项").to_pylist() == ROWS["事项"]
    assert got.column("姓名").to_pylist() == ["张*", "欧阳**", "李*"]
    assert got.column("手机").to_pylist()[:2] == ["138****5678", "139****4321"]
