"""A careless user at the table and report commands: an output path that is a folder, a
folder that does not exist or cannot be written (``/proc``, ``/sys``), a PDF path that is a
folder, an encoding that is not a text encoding (``rot13``) or not the file's (``utf-16`` on
UTF-8), ``--out-encoding utf-16`` (a byte-order mark written at every write call), a
UTF-16LE export, a header-only CSV without its newline, old-Mac CR line endings, XLSX
headers left empty or written twice, a SQLite input that does not exist and a SQLite output
that is a folder.

For every run: a clear, actionable error with the README's exit code (never the internal
error, exit 70, and never a traceback), no output and no temporary file left in the folder
after a failure, no claim of success for a file that was never written, and the attempt in
the audit trail. The report writes nothing (and records a failure) when its PDF fails.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from quanguard.container import build_container
from tests.conftest import make_settings

ROWS = 400
HEADER = "姓名,手机号,金额,城市,日期"
TEXT = HEADER + "\n" + "".join(
    f"张{i},1380013{i:04d},{100 + i}.5,烟台,2024-02-{1 + i % 28:02d}\n" for i in range(ROWS))
PHONE = "13800130007"


# -- helpers ----------------------------------------------------------------------------
def _events(tmp: Path) -> list[dict[str, Any]]:
    container = build_container(make_settings(tmp))
    try:
        with container.session() as session:
            return [json.loads(e.body) for e in container.audit.store.iter_range(session, 1)]
    finally:
        container.close()


def _output(result: Any) -> str:
    return (result.stdout or "") + (getattr(result, "stderr", "") or "")


def _refused(result: Any, code: int = 2, *words: str) -> str:
    """The run failed with ``code``, one clear line naming ``words``, no traceback."""
    out = _output(result)
    assert result.exit_code == code, out
    assert "internal error" not in out and "Traceback" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    err = result.stderr
    assert err.strip().splitlines()[-1].startswith("error: "), err
    for word in words:
        assert word.lower() in err.lower(), err
    return str(err)


def _leftovers(folder: Path, before: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in before)


def _failure_recorded(tmp: Path, before: int, action: str) -> dict[str, Any]:
    """The attempt left an event whose outcome is a failure, for ``action`` (or the
    command's ``cli.`` path)."""
    new = _events(tmp)[before:]
    failed = [d for d in new if d["event"]["outcome"] == "failure"
              and d["event"]["action"] in (action, "cli." + action.replace("_", "."), "cli." + action)]
    assert failed, [(d["event"]["action"], d["event"]["outcome"]) for d in new]
    return failed[-1]


@pytest.fixture
def good(tmp_path: Path) -> Path:
    src = tmp_path / "good.csv"
    src.write_text(TEXT, encoding="utf-8")
    return src


def _baseline(tmp: Path) -> int:
    return len(_events(tmp))


# -- F7: an output path that cannot be written -------------------------------------------
def test_mask_into_a_folder_named_like_a_table(cli_run: Callable[..., Any], tmp_path: Path,
                                               good: Path) -> None:
    target = tmp_path / "d.csv"
    target.mkdir()
    before, files = _baseline(tmp_path), {p.name for p in tmp_path.iterdir()}
    result = cli_run("mask", str(good), "-o", str(target))
    err = _refused(result, 2, "d.csv", "folder")
    assert "retry" not in err and "masking plan" not in result.stdout
    assert list(target.iterdir()) == [] and _leftovers(tmp_path, files) == []
    _failure_recorded(tmp_path, before, "mask")


@pytest.mark.parametrize("where", ["/proc/x.csv", "/sys/x.csv"])
def test_mask_into_a_folder_that_takes_no_files(cli_run: Callable[..., Any], tmp_path: Path,
                                                good: Path, where: str) -> None:
    if not Path(where).parent.is_dir():
        pytest.skip(f"no {Path(where).parent} here")
    before = _baseline(tmp_path)
    result = cli_run("mask", str(good), "-o", where)
    _refused(result, 2, "cannot write", where)
    assert "masking plan" not in result.stdout  # refused before the input was scanned
    assert not Path(where).exists()
    _failure_recorded(tmp_path, before, "mask")


def test_mask_into_a_missing_folder(cli_run: Callable[..., Any], tmp_path: Path, good: Path) -> None:
    before = _baseline(tmp_path)
    _refused(cli_run("mask", str(good), "-o", str(tmp_path / "nodir" / "o.csv")), 2, "does not exist")
    assert not (tmp_path / "nodir").exists()
    _failure_recorded(tmp_path, before, "mask")


def test_mask_a_text_file_into_a_folder(cli_run: Callable[..., Any], tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("张三 13800138000\n", encoding="utf-8")
    target = tmp_path / "out.txt"
    target.mkdir()
    before, files = _baseline(tmp_path), {p.name for p in tmp_path.iterdir()}
    _refused(cli_run("mask", str(src), "-o", str(target)), 2, "folder")
    assert list(target.iterdir()) == [] and _leftovers(tmp_path, files) == []
    _failure_recorded(tmp_path, before, "mask")


def test_watermark_embed_into_a_folder(cli_run: Callable[..., Any], tmp_path: Path, good: Path) -> None:
    target = tmp_path / "d.csv"
    target.mkdir()
    before, files = _baseline(tmp_path), {p.name for p in tmp_path.iterdir()}
    _refused(cli_run("watermark", "embed", str(good), "-o", str(target), "--recipient", "r1"),
             2, "folder")
    assert list(target.iterdir()) == [] and _leftovers(tmp_path, files) == []
    event = _failure_recorded(tmp_path, before, "watermark_embed")
    # the trail says what was wrong, not only the error's type
    assert "folder" in json.dumps(event, ensure_ascii=False), event


# -- the monthly report ------------------------------------------------------------------
@pytest.fixture
def officer(cli_run: Callable[..., Any], tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``cli_run`` with an officer's key in QUANGUARD_API_KEY (who may read the report)."""
    from quanguard.auth import create_key

    container = build_container(make_settings(tmp_path))
    try:
        with container.session() as s, s.begin():
            key = create_key(s, role="officer", org="市大数据局", name="officer-cli").key
    finally:
        container.close()
    monkeypatch.setenv("QUANGUARD_API_KEY", key)
    return cli_run


def _report_events(tmp: Path, before: int) -> list[tuple[str, str]]:
    return [(d["event"]["action"], d["event"]["outcome"]) for d in _events(tmp)[before:]]


@pytest.mark.parametrize("target", ["d.csv", "nodir/rep.html"])
def test_report_into_an_unusable_path(officer: Callable[..., Any], tmp_path: Path, target: str) -> None:
    if target == "d.csv":
        (tmp_path / "d.csv").mkdir()
    before, files = _baseline(tmp_path), {p.name for p in tmp_path.iterdir()}
    result = officer("report", "--month", "2025-12", "-o", str(tmp_path / target))
    _refused(result, 2, "folder")
    assert "wrote" not in result.stdout
    assert _leftovers(tmp_path, files) == []
    if target == "d.csv":
        assert list((tmp_path / "d.csv").iterdir()) == []
    # the trail says the attempt failed; it holds no success for a report never written
    events = _report_events(tmp_path, before)
    assert ("audit_report", "success") not in events, events
    assert ("cli.report", "failure") in events, events


def test_report_pdf_into_a_folder(officer: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "pdfdir").mkdir()
    before, files = _baseline(tmp_path), {p.name for p in tmp_path.iterdir()}
    result = officer("report", "--month", "2025-12", "-o", str(tmp_path / "r.html"),
                     "--pdf", str(tmp_path / "pdfdir"))
    _refused(result, 2, "pdfdir", "folder")
    assert "wrote" not in result.stdout
    assert _leftovers(tmp_path, files) == [] and list((tmp_path / "pdfdir").iterdir()) == []
    events = _report_events(tmp_path, before)
    assert ("audit_report", "success") not in events and ("cli.report", "failure") in events, events


FAKE_CHROMIUM = """\
import sys
mode = {mode!r}
target = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--print-to-pdf="))
if mode == "pdf":
    open(target, "wb").write(b"%PDF-1.4\\n1 0 obj<<>>endobj\\ntrailer<<>>\\n%%EOF\\n")
elif mode == "html":
    open(target, "wb").write(b"<html><body>an error page, not a PDF</body></html>" * 200)
sys.exit(1 if mode == "fail" else 0)
"""


@pytest.fixture
def chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """``chromium(mode)``: a stand-in for headless Chromium that prints a PDF (``pdf``),
    an HTML page under the PDF's name (``html``), nothing at all (``nothing``) or fails
    (``fail``)."""
    from quanguard import report

    def use(mode: str) -> None:
        script = tmp_path / "bin" / "chromium"
        script.parent.mkdir(exist_ok=True)
        script.write_text(f"#!{sys.executable}\n" + FAKE_CHROMIUM.format(mode=mode), encoding="utf-8")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setattr(report, "find_chromium", lambda: str(script))

    yield use


@pytest.mark.parametrize("mode", ["nothing", "html", "fail"])
def test_pdf_that_chromium_did_not_print_is_not_a_success(
        tmp_path: Path, chromium: Callable[[str], None], mode: str) -> None:
    """A stale PDF at the target, or a directory's size, never passes for a printed one."""
    from quanguard.errors import Unavailable
    from quanguard.report import html_to_pdf

    chromium(mode)
    folder = tmp_path / "out"
    folder.mkdir()
    stale = folder / "report.pdf"
    stale.write_bytes(b"%PDF-1.4 last month's report\n%%EOF\n")
    with pytest.raises(Unavailable, match="Chromium"):
        html_to_pdf("<html><body>报告</body></html>", stale)
    assert stale.read_bytes() == b"%PDF-1.4 last month's report\n%%EOF\n"
    assert sorted(p.name for p in folder.iterdir()) == ["report.pdf"]


def test_pdf_into_a_directory_is_refused(tmp_path: Path, chromium: Callable[[str], None]) -> None:
    from quanguard.errors import InvalidInput
    from quanguard.report import html_to_pdf

    chromium("pdf")
    folder = tmp_path / "pdfdir"
    folder.mkdir()
    with pytest.raises(InvalidInput, match="folder"):
        html_to_pdf("<html></html>", folder)
    assert list(folder.iterdir()) == []


def test_a_printed_pdf_is_moved_into_place(tmp_path: Path, chromium: Callable[[str], None]) -> None:
    from quanguard.report import html_to_pdf

    chromium("pdf")
    out = tmp_path / "report.pdf"
    out.write_bytes(b"old")
    assert html_to_pdf("<html></html>", out) == out.resolve()
    assert out.read_bytes().startswith(b"%PDF-")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "bin") == ["report.pdf"]


def test_report_whose_pdf_fails_writes_nothing_and_records_the_failure(
        officer: Callable[..., Any], tmp_path: Path, chromium: Callable[[str], None]) -> None:
    chromium("nothing")
    before, files = _baseline(tmp_path), {p.name for p in tmp_path.iterdir()}
    result = officer("report", "--month", "2025-12", "-o", str(tmp_path / "r.html"),
                     "--pdf", str(tmp_path / "r.pdf"))
    _refused(result, 7, "Chromium")
    assert "wrote" not in result.stdout
    assert _leftovers(tmp_path, files) == []
    events = _report_events(tmp_path, before)
    # the reading happened (audit_report); what followed it failed, and the trail says so
    assert events[-1] == ("cli.report", "failure"), events
    failure = _events(tmp_path)[-1]
    assert failure["labels"]["exit_code"] == "7" and "Chromium" in failure["event"]["reason"]


def test_report_with_a_pdf(officer: Callable[..., Any], tmp_path: Path,
                           chromium: Callable[[str], None]) -> None:
    chromium("pdf")
    before = _baseline(tmp_path)
    result = officer("report", "--month", "2025-12", "-o", str(tmp_path / "r.html"),
                     "--pdf", str(tmp_path / "r.pdf"))
    assert result.exit_code == 0, _output(result)
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF-")
    assert "2025-12" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    assert ("audit_report", "success") in _report_events(tmp_path, before)


# -- F9: encodings -----------------------------------------------------------------------
@pytest.mark.parametrize(("option", "value", "words"), [
    ("--encoding", "rot13", ("rot13", "not a text encoding")),
    ("--encoding", "base64", ("base64", "not a text encoding")),
    ("--encoding", "nonexist", ("nonexist", "unknown encoding")),
    ("--encoding", "utf-16", ("utf-16",)),
    ("--out-encoding", "nonexist", ("nonexist", "unknown encoding")),
    ("--out-encoding", "rot13", ("rot13", "not a text encoding")),
])
def test_mask_with_an_encoding_that_cannot_be(cli_run: Callable[..., Any], tmp_path: Path, good: Path,
                                              option: str, value: str, words: tuple[str, ...]) -> None:
    out = tmp_path / "o.csv"
    before, files = _baseline(tmp_path), {p.name for p in tmp_path.iterdir()}
    _refused(cli_run("mask", str(good), "-o", str(out), option, value), 2, *words)
    assert _leftovers(tmp_path, files) == []
    _failure_recorded(tmp_path, before, "mask")


def test_mask_a_text_file_with_rot13(cli_run: Callable[..., Any], tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("张三 13800138000\n", encoding="utf-8")
    before, files = _baseline(tmp_path), {p.name for p in tmp_path.iterdir()}
    _refused(cli_run("mask", str(src), "-o", str(tmp_path / "o.txt"), "--encoding", "rot13"), 2,
             "not a text encoding")
    assert _leftovers(tmp_path, files) == []
    _failure_recorded(tmp_path, before, "mask")


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_out_encoding_utf16_writes_one_byte_order_mark(cli_run: Callable[..., Any], tmp_path: Path,
                                                       good: Path, codec: str) -> None:
    from desensitize.tableio import read_table

    out = tmp_path / "o.csv"
    result = cli_run("mask", str(good), "-o", str(out), "--out-encoding", codec)
    assert result.exit_code == 0, _output(result)
    data = out.read_bytes()
    text = data.decode(codec)
    assert "\ufeff" not in text.lstrip("\ufeff")  # at most one mark, at the start
    assert text.count("\n") == ROWS + 1 and text.startswith(("\ufeff" + HEADER, HEADER))
    table = read_table(out, encoding=codec)
    assert table.num_rows == ROWS and table.column_names == HEADER.split(",")
    assert not any("\ufeff" in (v or "") for col in table.columns for v in col.to_pylist())
    assert PHONE not in text


# -- weaker seams ------------------------------------------------------------------------
@pytest.mark.parametrize(("codec", "bom", "option"), [
    ("utf-16-le", b"", "utf-16-le"),
    ("utf-16-le", b"", "utf-16"),
    ("utf-16-le", b"\xff\xfe", "utf-16"),
    ("utf-16-be", b"\xfe\xff", "utf-16"),
    ("utf-16-be", b"", "utf-16-be"),
])
def test_a_utf16_export_is_read_when_named(cli_run: Callable[..., Any], tmp_path: Path,
                                           codec: str, bom: bytes, option: str) -> None:
    src = tmp_path / "u16.csv"
    src.write_bytes(bom + TEXT.encode(codec))
    out = tmp_path / "o.csv"
    result = cli_run("mask", str(src), "-o", str(out), "--encoding", option,
                     "--out-encoding", "utf-8")
    assert result.exit_code == 0, _output(result)
    text = out.read_text(encoding="utf-8")
    assert text.startswith(HEADER + "\n") and text.count("\n") == ROWS + 1
    assert PHONE not in text


def test_a_utf16_export_without_the_option_says_which_to_name(cli_run: Callable[..., Any],
                                                              tmp_path: Path) -> None:
    src = tmp_path / "u16.csv"
    src.write_bytes(TEXT.encode("utf-16"))
    before = _baseline(tmp_path)
    _refused(cli_run("mask", str(src), "-o", str(tmp_path / "o.csv")), 2, "utf-16")
    assert not (tmp_path / "o.csv").exists()
    _failure_recorded(tmp_path, before, "mask")


@pytest.mark.parametrize("body", ["姓名,手机号", "姓名,手机号\n", "姓名,手机号\r\n", "姓名,手机号\r"])
def test_a_header_only_csv_has_no_rows(cli_run: Callable[..., Any], tmp_path: Path, body: str) -> None:
    src = tmp_path / "h.csv"
    src.write_text(body, encoding="utf-8", newline="")
    before = _baseline(tmp_path)
    err = _refused(cli_run("mask", str(src), "-o", str(tmp_path / "o.csv")), 2, "no rows")
    assert "block size" not in err
    assert not (tmp_path / "o.csv").exists()
    _failure_recorded(tmp_path, before, "mask")


def test_cr_only_line_endings_are_read(cli_run: Callable[..., Any], tmp_path: Path) -> None:
    src = tmp_path / "cr.csv"
    src.write_bytes(TEXT.replace("\n", "\r").encode("utf-8"))
    out = tmp_path / "o.csv"
    result = cli_run("mask", str(src), "-o", str(out))
    assert result.exit_code == 0, _output(result)
    text = out.read_text(encoding="utf-8")
    assert text.startswith(HEADER + "\n") and text.count("\n") == ROWS + 1 and PHONE not in text


def _xlsx(path: Path, rows: list[tuple[Any, ...]]) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(list(row))
    wb.save(path)
    return path


def test_xlsx_with_empty_header_cells_at_the_end(cli_run: Callable[..., Any], tmp_path: Path) -> None:
    from desensitize.tableio import read_table

    ids = "11010519491231002X"
    src = _xlsx(tmp_path / "x.xlsx", [("身份证号", None, None)]
                + [(ids, ids, f"1380013{i:04d}") for i in range(30)])
    out = tmp_path / "o.xlsx"
    result = cli_run("mask", str(src), "-o", str(out))
    assert result.exit_code == 0, _output(result)
    table = read_table(out)
    assert table.column_names == ["身份证号", "column_2", "column_3"] and table.num_rows == 30
    assert ids not in table.column(1).to_pylist()


def test_xlsx_cells_beyond_every_header_are_named(cli_run: Callable[..., Any], tmp_path: Path) -> None:
    rows: list[tuple[Any, ...]] = [("姓名", "手机号")] + [(f"张{i}", f"1380013{i:04d}") for i in range(1500)]
    rows.append(("张x", "13800138000", "stray"))
    src = _xlsx(tmp_path / "x.xlsx", rows)
    before = _baseline(tmp_path)
    err = _refused(cli_run("mask", str(src), "-o", str(tmp_path / "o.xlsx")), 2, "header")
    assert "row 1502" in err and "column C" in err
    assert not (tmp_path / "o.xlsx").exists()
    _failure_recorded(tmp_path, before, "mask")


@pytest.mark.parametrize("header", [("a", "a"), ("姓名", "身份证号", "身份证号"), ("id", " id ")])
def test_xlsx_duplicate_headers_are_refused_as_in_csv(cli_run: Callable[..., Any], tmp_path: Path,
                                                      header: tuple[str, ...]) -> None:
    src = _xlsx(tmp_path / "x.xlsx", [header, *[tuple(f"v{i}{j}" for j in range(len(header)))
                                                for i in range(5)]])
    before = _baseline(tmp_path)
    _refused(cli_run("mask", str(src), "-o", str(tmp_path / "o.xlsx")), 2, "duplicate column names")
    assert not (tmp_path / "o.xlsx").exists()
    _failure_recorded(tmp_path, before, "mask")


def test_a_missing_sqlite_input_is_not_created(cli_run: Callable[..., Any], tmp_path: Path) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    before = _baseline(tmp_path)
    _refused(cli_run("mask", f"sqlite:///{folder}/nope.db#t", "-o", str(tmp_path / "o.csv")), 2, "nope.db")
    assert list(folder.iterdir()) == []
    _failure_recorded(tmp_path, before, "mask")


def test_a_sqlite_output_that_is_a_folder(cli_run: Callable[..., Any], tmp_path: Path, good: Path) -> None:
    target = tmp_path / "db"
    target.mkdir()
    before = _baseline(tmp_path)
    result = cli_run("mask", str(good), "-o", f"sqlite:///{target}#t")
    err = _refused(result, 2, "folder")
    assert "retry" not in err and list(target.iterdir()) == []
    assert "masking plan" not in result.stdout  # refused before the input was scanned
    _failure_recorded(tmp_path, before, "mask")


def test_a_sqlite_output_in_a_missing_folder(cli_run: Callable[..., Any], tmp_path: Path, good: Path) -> None:
    before = _baseline(tmp_path)
    err = _refused(cli_run("mask", str(good), "-o", f"sqlite:///{tmp_path}/nodir/o.db#t"), 2,
                   "does not exist")
    assert "retry" not in err and not (tmp_path / "nodir").exists()
    _failure_recorded(tmp_path, before, "mask")


@pytest.mark.parametrize("where", ["/proc/x.db", "/sys/x.db"])
def test_a_sqlite_output_where_no_file_can_be(cli_run: Callable[..., Any], tmp_path: Path, good: Path,
                                              where: str) -> None:
    if not Path(where).parent.is_dir():
        pytest.skip(f"no {Path(where).parent} here")
    before = _baseline(tmp_path)
    err = _refused(cli_run("mask", str(good), "-o", f"sqlite:///{where}#t"), 2, "cannot write", where)
    assert "retry" not in err
    _failure_recorded(tmp_path, before, "mask")


def test_a_sqlite_output_round_trips(cli_run: Callable[..., Any], tmp_path: Path, good: Path) -> None:
    """The checks above refuse folders, not new database files."""
    db = tmp_path / "o.db"
    result = cli_run("mask", str(good), "-o", f"sqlite:///{db}#t")
    assert result.exit_code == 0, _output(result)
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from t").fetchone()[0] == ROWS


def test_report_interrupted_while_printing_writes_nothing_and_records_it(
        officer: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from quanguard import report

    def interrupted(html: str, *, timeout: float = 60.0) -> bytes:
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "print_pdf", interrupted)
    before, files = _baseline(tmp_path), {p.name for p in tmp_path.iterdir()}
    result = officer("report", "--month", "2025-12", "-o", str(tmp_path / "r.html"),
                     "--pdf", str(tmp_path / "r.pdf"))
    assert result.exit_code == 130, _output(result)
    assert _leftovers(tmp_path, files) == []
    assert _report_events(tmp_path, before)[-1] == ("cli.report", "failure")
    assert _events(tmp_path)[-1]["labels"]["exit_code"] == "130"


@pytest.mark.parametrize(("fail_at", "err", "kind"), [
    ("mkstemp", 13, "invalid"),      # EACCES: a folder that takes no files
    ("replace", 28, "unavailable"),  # ENOSPC at the rename
    ("write", 28, "unavailable"),    # ENOSPC while rows are written
    ("write", 27, "unavailable"),    # EFBIG: over the file size limit
])
def test_a_writer_that_cannot_write_says_why_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str, err: int, kind: str) -> None:
    import os

    import pyarrow as pa

    from desensitize.errors import TableError
    from desensitize.tableio import _common, open_writer

    def boom(*_a: Any, **_k: Any) -> Any:
        raise OSError(err, os.strerror(err))

    if fail_at == "mkstemp":  # the module's own name for it (tempfile.mkstemp, briefly)
        monkeypatch.setattr(f"{_common.__name__}.tempfile.mkstemp", boom)
    elif fail_at == "replace":
        monkeypatch.setattr(f"{_common.__name__}.os.replace", boom)
    batch = pa.record_batch({"a": pa.array(["1", "2"])})
    out = tmp_path / "o.csv"
    with pytest.raises(TableError) as caught, open_writer(out) as writer:
        if fail_at == "write":
            real = writer._fh  # type: ignore[attr-defined]

            class Full:
                write = staticmethod(boom)

                def close(self) -> None:
                    real.close()

            monkeypatch.setattr(writer, "_fh", Full())
        writer.write(batch)
    assert caught.value.kind == kind and os.strerror(err) in str(caught.value)
    assert str(out) in str(caught.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("codec", "end"), [("utf-16-le", "\n"), ("utf-8", "\r")])
def test_a_large_table_without_byte_lines_is_sampled_over_its_length(
        tmp_path: Path, codec: str, end: str) -> None:
    """Sampling windows start after a "\\n" byte: a UTF-16 file or one with CR line ends is
    read through instead, in bounded memory, and sampled from start to end."""
    from desensitize.tableio import open_table
    from desensitize.tableio._common import SMALL_FILE

    line = "编号,姓名,手机号" + end
    rows = SMALL_FILE // len(("0000000,张三,13800138000" + end).encode(codec)) + 1000
    body = "".join(f"{i:07d},张三,13800138000{end}" for i in range(rows))
    src = tmp_path / "big.csv"
    src.write_bytes((line + body).encode(codec))
    assert src.stat().st_size > SMALL_FILE
    source = open_table(src, encoding=codec)
    sample = [int(v) for b in source.sample_batches(2_000) for v in b.column(0).to_pylist()]
    assert 1_000 <= len(sample) <= 2_000
    assert min(sample) < rows // 10 and max(sample) > rows * 9 // 10


@pytest.mark.parametrize(("fail_at", "err", "code"), [("replace", 28, 7), ("write", 28, 7), ("write", 13, 2)])
def test_masking_a_text_file_that_cannot_be_written_says_why_and_leaves_nothing(
        cli_run: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        fail_at: str, err: int, code: int) -> None:
    """``mask notes.txt -o out.txt`` writes its own temp file: a full disk at the rename or
    mid-write was 'internal error' exit 70."""
    import os

    src = tmp_path / "notes.txt"
    src.write_text("市民王建国来电，电话13812345678。\n" * 50, encoding="utf-8")
    before, files = _baseline(tmp_path), {p.name for p in tmp_path.iterdir()}

    def boom(*_a: Any, **_k: Any) -> Any:
        raise OSError(err, os.strerror(err))

    # only the masked text's own temp file fails (the trail and the keys write as ever)
    real_replace, real_fdopen = os.replace, os.fdopen

    def replace(a: Any, b: Any, *rest: Any, **k: Any) -> Any:
        if fail_at == "replace" and str(a).endswith(".part") and Path(b).name == "out.txt":
            boom()
        return real_replace(a, b, *rest, **k)

    def fdopen(fd: int, *a: Any, **k: Any) -> Any:
        part = os.readlink(f"/proc/self/fd/{fd}").endswith(".part")
        handle = real_fdopen(fd, *a, **k)
        if fail_at != "write" or not part:
            return handle

        class Full:
            def __enter__(self) -> Any:
                return self

            def __exit__(self, *_e: object) -> None:
                handle.close()

            write = staticmethod(boom)

        return Full()

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fdopen", fdopen)
    result = cli_run("mask", str(src), "-o", str(tmp_path / "out.txt"))
    assert result.exit_code == code, _output(result)
    assert os.strerror(err) in _output(result) and "internal error" not in _output(result)
    assert _leftovers(tmp_path, files) == []
    _failure_recorded(tmp_path, before, "mask")
