"""desensitize.tableio: every format round-trips as strings; bad input is a clear error."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize.errors import TableError, TableTooLarge
from desensitize.tableio import detect_format, open_table, open_writer, read_table

ROWS = [
    {"姓名": "张三", "身份证号": "011010199003071234", "备注": "住址,含逗号"},
    {"姓名": "欧阳娜娜", "身份证号": "000000000000000012", "备注": '引号"在内'},
    {"姓名": "李四", "身份证号": "370102198001010011", "备注": "多行\n文本"},
]
NAMES = list(ROWS[0])


def _csv_text(rows: list[dict[str, str]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=NAMES, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"), ("gb18030", "gb18030")],
)
def test_csv_encoding_detected_and_kept(tmp_path: Path, encoding: str, expected: str) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(_csv_text(ROWS).encode(encoding))
    table = open_table(src)
    assert table.encoding == expected
    assert table.column_names == NAMES
    assert read_table(src).to_pylist() == ROWS  # leading zeros kept, quotes and newlines parsed
    out = tmp_path / "out.csv"
    with open_writer(out, "csv", table.encoding) as w:
        for batch in table.iter_batches(2):
            w.write(batch)
    assert out.read_bytes() == src.read_bytes()


def test_formats_round_trip(tmp_path: Path) -> None:
    src = pa.Table.from_pylist(ROWS)
    for suffix in ("jsonl", "parquet", "xlsx", "tsv"):
        path = tmp_path / f"t.{suffix}"
        with open_writer(path, schema=src.schema) as w:
            w.write(src)
        got = open_table(path)
        assert got.format == detect_format(path)
        assert got.column_names == NAMES
        assert read_table(path).to_pylist() == ROWS, suffix


def test_sql_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    con = sqlite3.connect(db)
    con.execute('create table people ("姓名" text, "身份证号" text, "备注" text, n integer)')
    con.executemany("insert into people values (?,?,?,?)", [(*r.values(), i) for i, r in enumerate(ROWS)])
    con.commit()
    con.close()
    src = open_table(f"sqlite:///{db}#people")
    assert src.column_names == [*NAMES, "n"]
    rows = read_table(f"sqlite:///{db}#people").to_pylist()
    assert [r["n"] for r in rows] == ["0", "1", "2"]
    with open_writer(f"sqlite:///{db}#masked") as w:
        for b in src.iter_batches():
            w.write(b)
    assert read_table(f"sqlite:///{db}", table="masked").to_pylist() == rows


def test_jsonl_values_become_json_text(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"id": "007", "n": 3, "ok": true, "x": null}\n\n{"id": "008", "n": 1.5}\n')
    assert read_table(path).to_pylist() == [
        {"id": "007", "n": "3", "ok": "true", "x": None},
        {"id": "008", "n": "1.5", "ok": None, "x": None},
    ]


def test_parquet_native_types_available(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": ["007"], "n": pa.array([5], pa.int64())}), path)
    src = open_table(path)
    assert src.native_schema.field("n").type == pa.int64()
    assert next(iter(src.iter_batches())).column("n").to_pylist() == ["5"]
    assert next(iter(src.iter_batches(strings=False))).column("n").to_pylist() == [5]


def test_sample_is_spread_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("i\n" + "".join(f"{i}\n" for i in range(10_000)))
    sample = pa.Table.from_batches(list(open_table(path).sample_batches(100)))
    values = [int(v) for v in sample.column("i").to_pylist()]
    assert len(values) == 100
    assert min(values) < 200 and max(values) > 9_000


BAD = [
    ("empty.csv", b"", "empty"),
    ("blank.csv", b"\n\n  \n", "empty"),
    ("ragged.csv", b"a,b\n1,2\n1,2,3\n", "ragged"),
    ("binary.csv", b"PK\x03\x04\x00\x00\x01\x02" * 10, "binary"),
    ("mixed.csv", "a,b\n张,三\n".encode() + "李,四\n".encode("gbk"), "mixed"),
    ("long.csv", b"a,b\n1," + b"x" * (10 * 2**20) + b"\n", "longer than"),
    ("corrupt.parquet", b"PAR1" + b"\x00garbage" * 20 + b"PAR1", "Parquet"),
    ("empty.parquet", b"", "empty"),
    ("bad.jsonl", b'{"a": 1}\n{not json}\n', "not JSON"),
    ("list.jsonl", b"[1, 2]\n", "object"),
    ("bad.xlsx", b"not a zip", "XLSX"),
    ("data.txt", b"hello", "unsupported"),
]


@pytest.mark.parametrize(("name", "data", "needle"), BAD)
def test_bad_input_is_a_clear_error(tmp_path: Path, name: str, data: bytes, needle: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(TableError) as info:
        read_table(path)
    assert needle in str(info.value)
    assert info.value.kind == "invalid"
    assert "\n" not in str(info.value)


def test_utf8_file_with_gbk_tail_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tail.csv"
    head = "a,b\n" + "张,三\n" * 300_000  # > the detection prefix
    path.write_bytes(head.encode() + "李,四\n".encode("gbk"))
    with pytest.raises(TableError, match="not valid utf-8"):
        read_table(path)


def test_xlsx_zip_bomb_refused_before_opening(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", b"\x00" * (1100 * 2**20))
    with pytest.raises(TableTooLarge):
        open_table(path)


def test_writer_is_atomic_on_error(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("previous\n")
    batch = pa.record_batch({"a": ["1"]})
    with pytest.raises(RuntimeError), open_writer(out) as w:
        w.write(batch)
        raise RuntimeError("boom")
    assert out.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_writer_refuses_unencodable_value(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    with pytest.raises(TableError, match="cannot be written in gbk"), open_writer(out, encoding="gbk") as w:
        w.write(pa.record_batch({"a": ["😀"]}))
    assert not out.exists()


def test_sql_source_needs_table() -> None:
    with pytest.raises(TableError, match="#table"):
        open_table("sqlite:///x.db")


def test_jsonl_writer_keeps_column_order(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    with open_writer(out) as w:
        w.write(pa.record_batch({"z": ["1"], "a": ["2"]}))
    assert list(json.loads(out.read_text())) == ["z", "a"]


def test_sql_jsonl_and_csv_samples_are_spread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from desensitize.tableio import _common

    db = tmp_path / "s.db"
    con = sqlite3.connect(db)
    con.execute("create table t (i integer)")
    con.executemany("insert into t values (?)", [(i,) for i in range(5000)])
    con.commit()
    con.close()
    got = [int(v) for b in open_table(f"sqlite:///{db}#t").sample_batches(80) for v in b.column("i").to_pylist()]
    assert len(got) == 80 and min(got) < 100 and max(got) > 4000
    monkeypatch.setattr(_common, "SMALL_FILE", 1000)  # both line formats sample in windows
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"i": str(i)}) + "\n" for i in range(5000)))
    got = [int(v) for b in open_table(path).sample_batches(80) for v in b.column("i").to_pylist()]
    assert len(got) == 80 and min(got) < 100 and max(got) > 4000
    path = tmp_path / "big.csv"
    path.write_text("i\n" + "".join(f"{i}\n" for i in range(5000)))
    got = [int(v) for b in open_table(path).sample_batches(80) for v in b.column("i").to_pylist()]
    assert len(got) == 80 and min(got) < 100 and max(got) > 4000


@settings(deadline=None, max_examples=150)
@given(st.binary(max_size=400), st.sampled_from(["x.csv", "x.tsv", "x.jsonl", "x.parquet", "x.xlsx"]))
def test_arbitrary_bytes_never_crash_the_reader(tmp_path_factory: pytest.TempPathFactory, data: bytes,
                                                name: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(data)
    try:
        table = read_table(path)
    except (TableError, TableTooLarge):
        return
    assert all(pa.types.is_string(f.type) for f in table.schema)


@settings(deadline=None, max_examples=60)
@given(st.lists(st.lists(st.text(max_size=8), min_size=2, max_size=2), min_size=1, max_size=10),
       st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
def test_csv_round_trip_of_arbitrary_text(tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]],
                                          encoding: str) -> None:
    path = tmp_path_factory.mktemp("rt") / "t.csv"
    table = pa.table({"列一": [r[0] for r in rows], "列二": [r[1] for r in rows]})
    try:
        with open_writer(path, encoding=encoding) as w:
            w.write(table)
    except TableError:
        return  # a character the encoding cannot hold: refused, nothing written
    try:
        back = read_table(path, encoding=encoding)
    except TableError:
        return  # e.g. a lone surrogate or a value pyarrow cannot tell from a line break
    assert back.to_pylist() == table.to_pylist()


@settings(deadline=None, max_examples=60)
@given(st.lists(st.one_of(st.none(), st.text(max_size=8)), min_size=1, max_size=6),
       st.sampled_from(["t.jsonl", "t.xlsx", "t.parquet", "t.tsv"]))
def test_writers_round_trip_or_refuse_cleanly(tmp_path_factory: pytest.TempPathFactory, values: list[str | None],
                                             name: str) -> None:
    path = tmp_path_factory.mktemp("w") / name
    table = pa.table({"值": pa.array(values, pa.string()), "n": [str(i) for i in range(len(values))]})
    try:
        with open_writer(path) as w:
            w.write(table)
    except TableError:
        assert not path.exists()
        return
    try:
        back = read_table(path)
    except TableError:
        return
    assert back.num_rows == len(values) and back.column("n").to_pylist() == table.column("n").to_pylist()


def test_jsonl_lone_surrogate_is_a_table_error(tmp_path: Path) -> None:
    """JSON escapes spelling a lone UTF-16 surrogate: a TableError naming the line (the
    Arrow column could not be built: UnicodeEncodeError before); a pair reads fine."""
    from desensitize.errors import TableError
    from desensitize.tableio import open_table

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"name": "ok"}\n{"name": "x\\uD800y"}\n')
    with pytest.raises(TableError, match=r"bad.jsonl:2: .*lone UTF-16 surrogate"):
        list(open_table(str(bad)).iter_batches())
    good = tmp_path / "good.jsonl"
    good.write_bytes(b'{"name": "x\\ud83d\\ude00y"}\n')
    (batch,) = open_table(str(good)).iter_batches()
    assert batch.column(0).to_pylist() == ["x\U0001F600y"]
