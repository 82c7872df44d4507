"""Reporters' files and bodies that are not UTF-8 (a bureau's GBK export), and paths that are
not files.

Attack (a careless integrator): the access log of a Windows system exported as GBK is fed to
``audit ingest`` or posted to ``/v1/events/batch``. Before this change every line was
refused as "malformed JSON ('utf-8' codec can't decode byte 0xca ...)" with no way to say
what the file is, the HTTP body was refused as "not UTF-8" even when its Content-Type
named ``charset=gbk``, and a folder given as the file was "no such file".

Guarantee: a non-UTF-8 line is refused with what is wrong and what to do (convert it, or
name the encoding); naming it (``--encoding gb18030``; ``charset=gbk`` over HTTP) stores the
very text; a line that is not valid in the named encoding is refused alone, by number.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quanguard.auth import Principal
from quanguard.container import Container
from tests.conftest import auth

ORG, PURPOSE = "市公积金管理中心", "核对缴存基数（第三季度）"


def lines(n: int = 3) -> list[str]:
    base = datetime.now(UTC) - timedelta(hours=1)
    return [json.dumps({"ts": (base + timedelta(seconds=i)).isoformat(),
                        "actor": {"id": f"u{i}", "role": "consumer", "org": ORG},
                        "action": "query", "dataset": "缴存明细", "grade": "L2", "rows": i,
                        "purpose": PURPOSE, "decision": "allow"}, ensure_ascii=False)
            for i in range(n)]


def gbk_file(path: Path, rows: list[str]) -> Path:
    path.write_bytes(("\n".join(rows) + "\n").encode("gbk"))
    return path


def stored(container: Container) -> list[Any]:
    store = container.audit.store
    with container.session() as session:
        return [store.get(session, row.seq) for row in store.iter_range(session, 1)]


# -- the CLI ------------------------------------------------------------------------------
def test_a_gbk_file_is_refused_with_what_to_do(cli_run: Callable[..., Any],
                                               tmp_path: Path) -> None:
    gbk_file(tmp_path / "gbk.ndjson", lines())
    r = cli_run("audit", "ingest", "gbk.ndjson", "--format", "json")
    assert r.exit_code == 2, r.output
    doc = json.loads(r.stdout.strip().splitlines()[0])
    assert doc["accepted"] == 0 and len(doc["errors"]) == 3
    message = doc["errors"][0]["error"]
    assert "not UTF-8" in message and "--encoding gb18030" in message, message
    assert "codec can't decode" not in message


def test_naming_the_encoding_stores_the_very_text(cli_run: Callable[..., Any],
                                                  tmp_path: Path) -> None:
    gbk_file(tmp_path / "gbk.ndjson", lines())
    r = cli_run("audit", "ingest", "gbk.ndjson", "--encoding", "gbk", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["accepted"] == 3
    with sqlite3.connect(tmp_path / "var" / "quanguard.db") as db:
        rows = db.execute("SELECT org, purpose, body FROM audit_events WHERE action = 'query'"
                          ).fetchall()
    assert len(rows) == 3 and {(r[0], r[1]) for r in rows} == {(ORG, PURPOSE)}
    assert all(PURPOSE in json.dumps(json.loads(r[2]), ensure_ascii=False) for r in rows)


def test_a_line_invalid_in_the_named_encoding_is_refused_alone(cli_run: Callable[..., Any],
                                                              tmp_path: Path) -> None:
    rows = [r.encode("gb18030") for r in lines(3)]
    rows[1] = rows[1][:-20] + b"\x81\x20" + rows[1][-20:]  # a lead byte without its trail byte
    (tmp_path / "mixed.ndjson").write_bytes(b"\n".join(rows) + b"\n")
    r = cli_run("audit", "ingest", "mixed.ndjson", "--encoding", "gb18030", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["accepted"] == 2 and [e["line"] for e in doc["errors"]] == [2]
    assert "not GB18030" in doc["errors"][0]["error"], doc["errors"]


def test_an_unknown_encoding_is_a_usage_error(cli_run: Callable[..., Any],
                                              tmp_path: Path) -> None:
    (tmp_path / "e.ndjson").write_text(lines(1)[0] + "\n", encoding="utf-8")
    r = cli_run("audit", "ingest", "e.ndjson", "--encoding", "latin-1")
    assert r.exit_code == 2
    assert "latin-1" in r.output and "gb18030" in r.output


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_utf8_with_or_without_a_byte_order_mark(cli_run: Callable[..., Any], tmp_path: Path,
                                                encoding: str) -> None:
    (tmp_path / "e.ndjson").write_bytes(("\n".join(lines()) + "\n").encode(encoding))
    r = cli_run("audit", "ingest", "e.ndjson", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["accepted"] == 3, r.output


def test_a_folder_is_not_called_missing(cli_run: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    r = cli_run("audit", "ingest", "logs")
    assert r.exit_code == 2
    assert "is a folder" in r.output and "no such file" not in r.output


# -- HTTP -----------------------------------------------------------------------------------
@pytest.fixture
def reporter(make_key: Callable[..., tuple[str, Principal]]) -> str:
    return make_key("reporter", org="市住建局")[0]


def _post(client: TestClient, key: str, body: bytes, ctype: str) -> Any:
    return client.post("/v1/events/batch", content=body,
                       headers={**auth(key), "Content-Type": ctype})


@pytest.mark.parametrize("charset", ["gbk", "GB18030", "gb2312", '"gbk"'])
def test_a_gbk_body_with_its_charset_is_stored(client: TestClient, container: Container,
                                               reporter: str, charset: str) -> None:
    body = "\n".join(lines()).encode("gbk")
    r = _post(client, reporter, body, f"application/x-ndjson; charset={charset}")
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 3
    reported = [e for e in stored(container) if e.action == "query"]
    assert {e.purpose for e in reported} == {PURPOSE}
    assert {e.actor.org for e in reported} == {ORG}


def test_a_gbk_body_without_a_charset_says_how_to_name_it(client: TestClient,
                                                          reporter: str) -> None:
    r = _post(client, reporter, "\n".join(lines()).encode("gbk"), "application/x-ndjson")
    assert r.status_code == 400, r.text
    doc = r.json()
    assert "not UTF-8" in doc["error"]["message"] and "charset=gb18030" in doc["error"]["message"], doc
    assert doc["error"]["request_id"]


def test_an_unsupported_charset_is_a_400(client: TestClient, reporter: str) -> None:
    r = _post(client, reporter, "\n".join(lines()).encode("utf-8"),
              "application/x-ndjson; charset=latin-1")
    assert r.status_code == 400 and "latin-1" in r.json()["error"]["message"], r.text


def test_a_gb18030_file_with_a_byte_order_mark(cli_run: Callable[..., Any],
                                               tmp_path: Path) -> None:
    """GB18030 has a byte order mark of its own (84 31 95 33), as UTF-8 has EF BB BF: the
    first line is read like any other, not refused as malformed."""
    body = ("\ufeff" + "\n".join(lines()) + "\n").encode("gb18030")
    assert body.startswith(b"\x84\x31\x95\x33")
    (tmp_path / "bom.ndjson").write_bytes(body)
    r = cli_run("audit", "ingest", "bom.ndjson", "--encoding", "gb18030", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["accepted"] == 3


def test_one_event_with_its_charset_is_stored(client: TestClient, container: Container,
                                              reporter: str) -> None:
    r = client.post("/v1/events", content=lines(1)[0].encode("gbk"),
                    headers={**auth(reporter), "Content-Type": "application/json; charset=gbk"})
    assert r.status_code == 201, r.text
    (event,) = [e for e in stored(container) if e.action == "query"]
    assert event.purpose == PURPOSE and event.seq == r.json()["seq"]


def test_a_body_not_valid_in_its_named_charset_names_the_line(client: TestClient,
                                                               reporter: str) -> None:
    rows = [r.encode("gb18030") for r in lines(3)]
    rows[2] = rows[2][:-20] + b"\x81\x20" + rows[2][-20:]  # a lead byte without its trail byte
    r = _post(client, reporter, b"\n".join(rows), "application/x-ndjson; charset=gb18030")
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert "not GB18030 text" in message and "line 3" in message, message
