"""JSON Lines in a GBK export, read and written in the encoding named for them.

``quanguard mask 客户.jsonl --encoding gbk`` ignored the option for JSON Lines and every
line of a GBK file failed with Python's "'utf-8' codec can't decode byte …"; nothing
said what to do. The masking API's NDJSON body has the same rule
(``test_mask_ndjson_charset``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import Result

from desensitize.errors import TableError
from desensitize.tableio import open_table, open_writer

ROWS = [{"姓名": "张三", "联系电话": "13812345678", "备注": "住址：山东省济南市历下区"},
        {"姓名": "欧阳娜娜", "联系电话": "13900001111", "备注": "无"}]


def _write(path: Path, encoding: str, *, bom: bytes = b"") -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS)
    path.write_bytes(bom + text.encode(encoding))


def _read(path: Path, encoding: str | None = None) -> list[dict[str, str | None]]:
    source = open_table(path, encoding=encoding)
    return [row for batch in source.iter_batches() for row in pa.Table.from_batches([batch]).to_pylist()]


@pytest.mark.parametrize("named", ["gbk", "GBK", "gb2312", "gb18030", "cp936"])
def test_a_gbk_file_named_gbk_reads_the_very_text(tmp_path: Path, named: str) -> None:
    path = tmp_path / "客户.jsonl"
    _write(path, "gbk")
    assert _read(path, named) == ROWS
    assert open_table(path, encoding=named).encoding == "gb18030"


def test_utf8_with_or_without_its_bom_and_gb18030_with_its_bom(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    _write(path, "utf-8")
    assert _read(path) == ROWS and _read(path, "utf-8") == ROWS
    _write(path, "utf-8", bom=b"\xef\xbb\xbf")
    assert _read(path) == ROWS
    _write(path, "gb18030", bom="\ufeff".encode("gb18030"))
    assert _read(path, "gb18030") == ROWS


def test_a_gbk_file_not_named_says_where_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "客户.jsonl"
    path.write_bytes(b'{"n": "ascii"}\n' + json.dumps(ROWS[0], ensure_ascii=False).encode("gbk") + b"\n")
    with pytest.raises(TableError) as err:
        _read(path)
    message = str(err.value)
    assert message.startswith("客户.jsonl:2: not UTF-8 text (byte 0x"), message
    assert "gb18030" in message and "codec can't decode" not in message, message


def test_bytes_not_valid_in_the_named_encoding_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"n": "\x81\x20"}\n')  # 0x81 starts a GB pair; 0x20 cannot end one
    with pytest.raises(TableError, match=r"bad.jsonl:1: not GB18030 text \(byte 0x81 at byte 8"):
        _read(path, "gbk")


@pytest.mark.parametrize("named", ["utf-16", "latin-1", "no-such-codec"])
def test_an_encoding_json_lines_cannot_be_in_is_refused(tmp_path: Path, named: str) -> None:
    path = tmp_path / "a.jsonl"
    _write(path, "utf-8")
    with pytest.raises(TableError, match=named):
        open_table(path, encoding=named)
    with pytest.raises(TableError, match=named):
        open_writer(tmp_path / "out.jsonl", encoding=named)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]  # no temp file left


def test_a_writer_writes_the_named_encoding(tmp_path: Path) -> None:
    table = pa.Table.from_pylist(ROWS)
    for named, codec in (("gbk", "gb18030"), (None, "utf-8")):
        out = tmp_path / f"out-{named}.jsonl"
        with open_writer(out, encoding=named) as writer:
            writer.write(table)
        lines = out.read_bytes().decode(codec).splitlines()
        assert [json.loads(x) for x in lines] == ROWS


def test_cli_masks_a_gbk_jsonl_and_answers_in_gbk(run: Callable[..., Result], tmp_path: Path) -> None:
    src, out = tmp_path / "客户.jsonl", tmp_path / "客户.masked.jsonl"
    _write(src, "gbk")
    r = run("mask", str(src), "-o", str(out), "--format", "json")
    assert r.exit_code != 0 and not out.exists()
    assert "not UTF-8 text" in r.output and "Traceback" not in r.output, r.output
    r = run("mask", str(src), "-o", str(out), "--encoding", "gbk", "--format", "json")
    assert r.exit_code == 0, r.output
    masked = [json.loads(x) for x in out.read_bytes().decode("gb18030").splitlines()]
    assert [set(m) for m in masked] == [set(x) for x in ROWS]
    assert masked[0]["姓名"] != "张三" and masked[0]["联系电话"] != "13812345678"
    utf8 = tmp_path / "utf8.jsonl"
    r = run("mask", str(src), "-o", str(utf8), "--encoding", "gbk", "--out-encoding", "utf-8")
    assert r.exit_code == 0, r.output
    assert [json.loads(x) for x in utf8.read_text(encoding="utf-8").splitlines()] == masked
