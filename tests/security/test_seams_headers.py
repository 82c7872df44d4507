"""Review rvF — a column header written to dodge its hint.

Attack (a careless provider, a consumer who wants the rows): a column of common names
(张伟, 王芳 … each on many rows) is a person's name only by its header — values that
repeat this much are typed PERSON when the header says so. Written ``姓\\u200b名`` (a
zero-width space inside), ``ｎａｍｅ`` (full-width) or ``nаme`` (a Cyrillic ``а``), the
header matched no hint: the dataset was graded L2 and an extract delivered the names
unmasked, next to birth dates and genders.

Guarantee: headers are compared after NFKC, without characters that print as nothing,
and with Cyrillic and Greek letters that look Latin read as Latin; each written form
gives the hint of the plain header, the dataset its grade (L3), and no extract.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from desensitize.headers import hint_for
from quanguard.auth import Principal
from tests.conftest import auth
from tests.quanguard.test_exchange_flows import csv_bytes
from tests.security.test_seams_exchange import register

PROV, BANK = "市卫健委", "某银行"

DISGUISED = {
    "zero-width space": ("姓\u200b名", "name"), "word joiner": ("姓名\u2060", "name"),
    "soft hyphen": ("na\u00adme", "name"), "full-width": ("ｎａｍｅ", "name"),
    "full-width pinyin": ("ＸＭ", "XM"), "cyrillic a": ("n\u0430me", "name"),
    "greek omicron": ("ph\u03bfne", "phone"), "cyrillic capitals": ("N\u0410\u041c\u0415", "NAME"),
}


@pytest.fixture
def keys(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> dict[str, str]:
    return {"prov": make_key("provider", org=PROV)[0], "bank": make_key("consumer", org=BANK)[0]}


@pytest.mark.parametrize("name", list(DISGUISED))
def test_a_disguised_header_gives_the_plain_headers_hint(name: str) -> None:
    disguised, plain = DISGUISED[name]
    assert hint_for(plain).entity is not None
    assert hint_for(disguised) == hint_for(plain), name


@pytest.mark.parametrize("header", ["姓名", "姓\u200b名", "ｎａｍｅ", "n\u0430me"])
def test_names_under_a_disguised_header_are_not_extracted(client: TestClient, keys: dict[str, str], header: str) -> None:
    rnd = random.Random(2)
    n = 300
    cols = {"出生日期": [f"19{rnd.randint(50, 99)}-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}" for _ in range(n)],
            "性别": [rnd.choice(["男", "女"]) for _ in range(n)],
            header: [rnd.choice(["张伟", "王芳", "李娜", "刘洋", "陈静"]) for _ in range(n)],
            "score": [rnd.randint(0, 9) for _ in range(n)]}
    r = register(client, keys["prov"], "people", csv_bytes(cols), key_column=header)
    assert r.status_code == 201, r.text
    assert r.json()["grade"] == "L3", r.json()
    e = client.post("/v1/exchange/extract", headers=auth(keys["bank"]), json={"dataset": "people"})
    assert e.status_code == 403, e.text[:300]
    assert "张伟" not in e.text
