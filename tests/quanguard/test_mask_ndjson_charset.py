"""``POST /v1/mask`` with an NDJSON body in a named encoding.

A bureau's systems export GBK. Its CSV, TSV and text bodies are read in the ``charset``
the request names and answered in it; its NDJSON body ignored the name and was refused
as "NDJSON must be UTF-8" (nothing said which line, which byte, or what to do), and a
charset nobody supports passed unnoticed on an ASCII body.
"""

from __future__ import annotations

import json

from tests.conftest import auth

LINES = [{"id": 1, "姓名": "张三", "联系电话": "13812345678", "备注": "住址：山东省济南市历下区"},
         {"id": 2, "姓名": "李四", "person": {"phone": "13900001111"}}]
BODY = "\n".join(json.dumps(x, ensure_ascii=False) for x in LINES) + "\n"


def _key(make_key: object) -> str:
    return make_key("provider")[0]  # type: ignore[operator,no-any-return]


def _post(client: object, key: str, body: bytes, ctype: str) -> object:
    return client.post("/v1/mask", content=body,  # type: ignore[attr-defined]
                       headers={**auth(key), "content-type": ctype})


def test_a_gbk_ndjson_body_named_gbk_is_masked_and_answered_in_its_encoding(
        client: object, make_key: object) -> None:
    key = _key(make_key)
    resp = _post(client, key, BODY.encode("gbk"), "application/x-ndjson; charset=GBK")
    assert resp.status_code == 200, resp.text  # type: ignore[attr-defined]
    ctype = resp.headers["content-type"]  # type: ignore[attr-defined]
    assert ctype.startswith("application/x-ndjson") and "charset=gb18030" in ctype
    assert resp.headers["x-quanguard-source-encoding"] == "gb18030"  # type: ignore[attr-defined]
    text = resp.content.decode("gb18030")  # type: ignore[attr-defined]
    out = [json.loads(x) for x in text.splitlines() if x]
    assert [r["id"] for r in out] == [1, 2]
    assert out[0]["姓名"] != "张三" and out[0]["联系电话"] != "13812345678"
    assert out[1]["person"]["phone"] != "13900001111"
    assert "张三" not in text and "13812345678" not in text
    # the same records sent as UTF-8 are masked to the very same values
    same = _post(client, key, BODY.encode(), "application/x-ndjson")
    assert same.status_code == 200  # type: ignore[attr-defined]
    assert [json.loads(x) for x in same.text.splitlines() if x] == out  # type: ignore[attr-defined]


def test_gb18030_and_gb2312_names_are_read_the_same_way(client: object, make_key: object) -> None:
    key = _key(make_key)
    for name in ("gb18030", "gb2312", "cp936"):
        resp = _post(client, key, BODY.encode("gb18030"), f"application/x-ndjson; charset={name}")
        assert resp.status_code == 200, (name, resp.text)  # type: ignore[attr-defined]
        assert len(resp.content.decode("gb18030").splitlines()) == 2  # type: ignore[attr-defined]


def test_utf8_named_or_not_is_answered_as_utf8(client: object, make_key: object) -> None:
    key = _key(make_key)
    for ctype in ("application/x-ndjson", "application/x-ndjson; charset=utf-8",
                  'application/x-ndjson; charset="UTF-8"'):
        resp = _post(client, key, BODY.encode(), ctype)
        assert resp.status_code == 200, (ctype, resp.text)  # type: ignore[attr-defined]
        assert "gb18030" not in resp.headers["content-type"]  # type: ignore[attr-defined]
        out = [json.loads(x) for x in resp.content.decode("utf-8").splitlines()]  # type: ignore[attr-defined]
        assert len(out) == 2 and out[0]["姓名"] != "张三"


def test_a_gbk_body_not_named_is_refused_saying_which_record_byte_and_what_to_do(
        client: object, make_key: object) -> None:
    key = _key(make_key)
    body = (json.dumps({"id": 0, "n": "ascii"}) + "\n" + BODY).encode("gbk")
    resp = _post(client, key, body, "application/x-ndjson")
    assert resp.status_code == 400, resp.text  # type: ignore[attr-defined]
    message = resp.json()["error"]["message"]  # type: ignore[attr-defined]
    assert "record 1" in message and "UTF-8" in message, message
    assert "0x" in message and "charset=gb18030" in message, message


def test_a_body_not_valid_in_its_named_charset_is_refused(client: object, make_key: object) -> None:
    key = _key(make_key)
    body = b'{"id": 1, "n": "ok"}\n{"id": 2, "n": "\x81\x20"}\n'  # 0x81 starts a pair; 0x20 cannot end one
    resp = _post(client, key, body, "application/x-ndjson; charset=gb18030")
    assert resp.status_code == 400, resp.text  # type: ignore[attr-defined]
    message = resp.json()["error"]["message"]  # type: ignore[attr-defined]
    assert "record 1" in message and "GB18030" in message, message


def test_an_unsupported_charset_is_refused_even_on_an_ascii_body(client: object, make_key: object) -> None:
    key = _key(make_key)
    resp = _post(client, key, b'{"phone": "13812345678"}\n', "application/x-ndjson; charset=latin-1")
    assert resp.status_code == 400, resp.text  # type: ignore[attr-defined]
    assert "GBK" in resp.json()["error"]["message"]  # type: ignore[attr-defined]
    assert resp.json()["error"]["request_id"]  # type: ignore[attr-defined]


def test_a_refused_body_is_on_the_trail(client: object, make_key: object, container: object) -> None:
    key = _key(make_key)
    resp = _post(client, key, BODY.encode("gbk"), "application/x-ndjson")
    assert resp.status_code == 400  # type: ignore[attr-defined]
    rid = resp.json()["error"]["request_id"]  # type: ignore[attr-defined]
    from sqlalchemy import select

    from monitor.store import EVENTS

    with container.engine.connect() as conn:  # type: ignore[attr-defined]
        bodies = [json.loads(b) for (b,) in conn.execute(select(EVENTS.c.body))]
    mine = [b for b in bodies if b.get("trace", {}).get("id") == rid]
    assert len(mine) == 1, mine
    assert mine[0]["event"]["outcome"] == "failure" and mine[0]["labels"]["http_status"] == "400"


def test_a_multipart_ndjson_file_takes_its_parts_charset(client: object, make_key: object) -> None:
    key = _key(make_key)
    files = {"file": ("出行记录.jsonl", BODY.encode("gbk"), "application/x-ndjson; charset=gbk")}
    resp = client.post("/v1/mask", files=files, headers=auth(key))  # type: ignore[attr-defined]
    assert resp.status_code == 200, resp.text
    text = resp.content.decode("gb18030")
    assert "张三" not in text and len(text.splitlines()) == 2
    files = {"file": ("出行记录.jsonl", BODY.encode("gbk"), "application/x-ndjson")}
    resp = client.post("/v1/mask", files=files, headers=auth(key))  # type: ignore[attr-defined]
    assert resp.status_code == 400 and "record 0" in resp.json()["error"]["message"]


def test_byte_order_marks_start_the_body_only(client: object, make_key: object) -> None:
    key = _key(make_key)
    resp = _post(client, key, b"\xef\xbb\xbf" + BODY.encode(), "application/x-ndjson")
    assert resp.status_code == 200, resp.text  # type: ignore[attr-defined]
    resp = _post(client, key, "\ufeff".encode("gb18030") + BODY.encode("gb18030"),
                 "application/x-ndjson; charset=gb18030")
    assert resp.status_code == 200, resp.text  # type: ignore[attr-defined]
    inner = BODY.encode() + b"\xef\xbb\xbf" + b'{"id": 3}\n'
    resp = _post(client, key, inner, "application/x-ndjson")
    assert resp.status_code == 400 and "record 2" in resp.json()["error"]["message"]  # type: ignore[attr-defined]
