"""Regression tests of issue 14: ``/v1/mask`` keeps the caller's payload intact.

Each test is a defect an integrator met: nested objects returned as JSON strings,
NDJSON that gains keys and loses types, a GBK CSV labelled UTF-8, multipart refused,
400 for a wrong content type, temp file names in errors, records without an index.
"""

from __future__ import annotations

import json

from tests.conftest import auth

NESTED = {"id": 7, "score": 3.5, "flag": True, "note": None,
          "person": {"name": "张三", "phone": "13812345678", "age": 30},
          "contacts": [{"phone": "13912345678"}, {"phone": "13712345678"}],
          "tags": ["a", "b"]}


def _key(make_key: object, role: str = "provider") -> str:
    return make_key(role)[0]  # type: ignore[operator,no-any-return]


def test_nested_objects_and_arrays_masked_in_place(client: object, make_key: object) -> None:
    key = _key(make_key)
    data = [NESTED, {**NESTED, "id": 8, "person": {"name": "李四", "phone": "13800001111", "age": 41}}]
    resp = client.post("/v1/mask", json={"records": data}, headers=auth(key))  # type: ignore[attr-defined]
    assert resp.status_code == 200, resp.text
    out = resp.json()["records"]
    first = out[0]
    assert isinstance(first["person"], dict), first
    assert set(first) == set(NESTED) and set(first["person"]) == {"name", "phone", "age"}
    assert first["person"]["phone"] != "13812345678" and isinstance(first["person"]["phone"], str)
    assert first["person"]["name"] != "张三"
    assert first["person"]["age"] == 30
    assert isinstance(first["contacts"], list) and len(first["contacts"]) == 2
    assert all(c["phone"] not in ("13912345678", "13712345678") for c in first["contacts"])
    assert first["tags"] == ["a", "b"]
    assert first["id"] == 7 and first["score"] == 3.5 and first["flag"] is True and first["note"] is None
    text = json.dumps(out, ensure_ascii=False)
    assert "13812345678" not in text and "张三" not in text and "李四" not in text


def test_records_keep_missing_keys_missing(client: object, make_key: object) -> None:
    key = _key(make_key)
    data = [{"姓名": "张三", "n": 1}, {"联系电话": "13812345678"}]
    resp = client.post("/v1/mask", json={"records": data}, headers=auth(key))  # type: ignore[attr-defined]
    assert resp.status_code == 200, resp.text
    out = resp.json()["records"]
    assert set(out[0]) == {"姓名", "n"} and set(out[1]) == {"联系电话"} and out[0]["n"] == 1


def test_ndjson_keeps_keys_and_types(client: object, make_key: object) -> None:
    key = _key(make_key)
    lines = [{"id": 1, "姓名": "张三", "联系电话": "13812345678", "amount": 12.5},
             {"id": 2, "姓名": "李四", "person": {"phone": "13900001111"}}]
    body = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n"
    resp = client.post("/v1/mask", content=body.encode(),  # type: ignore[attr-defined]
                       headers={**auth(key), "content-type": "application/x-ndjson"})
    assert resp.status_code == 200, resp.text
    out = [json.loads(x) for x in resp.text.splitlines() if x]
    assert set(out[0]) == set(lines[0]) and set(out[1]) == set(lines[1])
    assert out[0]["id"] == 1 and out[0]["amount"] == 12.5 and out[1]["id"] == 2
    assert out[0]["姓名"] != "张三" and out[1]["person"]["phone"] != "13900001111"
    assert resp.headers["content-type"].startswith("application/x-ndjson")


def test_ndjson_bad_line_names_its_index(client: object, make_key: object) -> None:
    key = _key(make_key)
    body = '{"姓名": "张三"}\n[1, 2]\n'
    resp = client.post("/v1/mask", content=body.encode(),  # type: ignore[attr-defined]
                       headers={**auth(key), "content-type": "application/x-ndjson"})
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["index"] == 1 and "1" in err["message"]


def test_json_bad_record_names_its_index(client: object, make_key: object) -> None:
    key = _key(make_key)
    resp = client.post("/v1/mask", json={"records": [{"a": "1"}, {"b": "2"}, 3]},  # type: ignore[attr-defined]
                       headers=auth(key))
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["index"] == 2 and "2" in err["message"]


def test_gbk_csv_charset_tells_the_truth(client: object, make_key: object) -> None:
    key = _key(make_key)
    text = "姓名,联系电话,备注\n张三,13812345678,一般\n李四,13900001111,重要客户\n"
    resp = client.post("/v1/mask", content=text.encode("gbk"),  # type: ignore[attr-defined]
                       headers={**auth(key), "content-type": "text/csv"})
    assert resp.status_code == 200, resp.text
    ctype = resp.headers["content-type"].lower()
    charset = ctype.split("charset=")[1].strip()
    decoded = resp.content.decode(charset)
    assert "备注" in decoded and "张三" not in decoded
    assert resp.headers["x-quanguard-source-encoding"].lower() in ("gbk", "gb18030", "gb2312")


def test_multipart_upload_accepted(client: object, make_key: object) -> None:
    key = _key(make_key)
    text = "姓名,联系电话\n张三,13812345678\n"
    resp = client.post("/v1/mask", files={"file": ("people.csv", text.encode(), "text/csv")},  # type: ignore[attr-defined]
                       data={"profile": "共享"}, headers=auth(key))
    assert resp.status_code == 200, resp.text
    assert "张三" not in resp.text and "姓名" in resp.text
    assert resp.headers["content-type"].startswith("text/csv")


def test_wrong_content_type_is_415_listing_types(client: object, make_key: object) -> None:
    key = _key(make_key)
    resp = client.post("/v1/mask", content=b"<x/>",  # type: ignore[attr-defined]
                       headers={**auth(key), "content-type": "application/xml"})
    assert resp.status_code == 415, resp.text
    err = resp.json()["error"]
    assert "application/json" in err["message"] and "multipart/form-data" in err["message"]
    assert "text/csv" in err["accepted"]


def test_errors_never_show_temp_file_names(client: object, make_key: object) -> None:
    key = _key(make_key)
    bad = "姓名,联系电话\n张三,13812345678,extra,more\n李四\n"
    resp = client.post("/v1/mask", content=bad.encode(),  # type: ignore[attr-defined]
                       headers={**auth(key), "content-type": "text/csv"})
    assert 400 <= resp.status_code < 500, resp.text
    msg = resp.json()["error"]["message"]
    assert "tmp" not in msg and ".csv:" not in msg.replace("the uploaded CSV", ""), msg
    resp = client.post("/v1/mask", files={"file": ("客户.csv", bad.encode(), "text/csv")},  # type: ignore[attr-defined]
                       headers=auth(key))
    assert 400 <= resp.status_code < 500, resp.text
    msg = resp.json()["error"]["message"]
    assert "tmp" not in msg, msg


def test_one_body_limit_setting() -> None:
    import quanguard.api.routes_mask as rm
    import quanguard.api.uploads as up

    assert not hasattr(rm, "MAX_BODY") and not hasattr(rm, "MAX_JSON") and not hasattr(up, "MAX_UPLOAD")


def test_multipart_xlsx_comes_back_xlsx(client: object, make_key: object) -> None:
    import io

    from openpyxl import Workbook, load_workbook

    key = _key(make_key)
    wb = Workbook()
    ws = wb.active
    ws.append(["姓名", "联系电话", "编号"])
    ws.append(["张三", "13812345678", 1])
    buf = io.BytesIO()
    wb.save(buf)
    resp = client.post("/v1/mask", files={"file": ("客户.xlsx", buf.getvalue(),  # type: ignore[attr-defined]
                                                    "application/octet-stream")}, headers=auth(key))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/vnd.openxmlformats")
    rows = list(load_workbook(io.BytesIO(resp.content)).active.iter_rows(values_only=True))
    assert rows[0] == ("姓名", "联系电话", "编号") and rows[1][0] != "张三" and rows[1][1] != "13812345678"


def test_unmask_wrong_content_type_is_415(client: object, make_key: object) -> None:
    key = _key(make_key)
    resp = client.post("/v1/unmask", content=b"a,b\n", headers={**auth(key), "content-type": "text/csv"})  # type: ignore[attr-defined]
    assert resp.status_code == 415 and resp.json()["error"]["accepted"] == ["application/json"]


def test_nan_infinity_and_huge_numbers_are_400_not_500(client: object, container: object,
                                                        make_key: object) -> None:
    key = _key(make_key)
    for body in (b'{"records": [{"a": NaN}]}', b'{"records": [{"a": "x", "n": -Infinity}]}',
                 b'{"records": [{"a": 1e400}]}'):
        resp = client.post("/v1/mask", content=body,  # type: ignore[attr-defined]
                           headers={**auth(key), "content-type": "application/json"})
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["error"]["kind"] == "invalid"
    resp = client.post("/v1/mask", content=b'{"a": "x"}\n{"a": NaN}\n',  # type: ignore[attr-defined]
                       headers={**auth(key), "content-type": "application/x-ndjson"})
    assert resp.status_code == 400 and resp.json()["error"]["index"] == 1
    # refused before any masking: no mask event claims a success that was never answered
    with container.session() as s:  # type: ignore[attr-defined]
        events = [json.loads(e.body) for e in container.audit.store.iter_range(s)]  # type: ignore[attr-defined]
    assert not [e for e in events if e["event"]["action"] == "mask"]


def test_a_declared_charset_is_taken_as_given(client: object, make_key: object) -> None:
    key = _key(make_key)
    text = "姓名,电话\n张三,13812345678\n"  # too short for detection to tell GBK from Korean
    resp = client.post("/v1/mask", content=text.encode("gbk"),  # type: ignore[attr-defined]
                       headers={**auth(key), "content-type": "text/csv; charset=GBK"})
    assert resp.status_code == 200, resp.text
    charset = resp.headers["content-type"].split("charset=")[1]
    assert resp.content.decode(charset) == "姓名,电话\n张*,138****5678\n"
    resp = client.post("/v1/mask", content=text.encode(),  # type: ignore[attr-defined]
                       headers={**auth(key), "content-type": "text/csv; charset=latin-1"})
    assert resp.status_code == 400 and "GBK" in resp.json()["error"]["message"]


def test_ndjson_records_end_at_newline_only(client: object, make_key: object) -> None:
    """A value holding U+2028, U+2029 or U+0085 (raw, as json.dumps(ensure_ascii=False)
    writes them) stays inside its record: NDJSON lines end at "\\n" (or "\\r\\n") only."""
    key = _key(make_key)
    odd = "\u2028\u2029\x85"
    lines = [{"id": i, "备注": f"地址{c}山东省济南市", "联系电话": "13812345678"}
             for i, c in enumerate(odd)]
    body = "\r\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\r\n"
    resp = client.post("/v1/mask", content=body.encode(),  # type: ignore[attr-defined]
                       headers={**auth(key), "content-type": "application/x-ndjson"})
    assert resp.status_code == 200, resp.text
    out = [json.loads(x) for x in resp.text.split("\n") if x.strip()]
    assert [r["id"] for r in out] == list(range(len(odd)))
    assert all(r["联系电话"] != "13812345678" for r in out)
