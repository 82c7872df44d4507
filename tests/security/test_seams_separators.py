"""Review rvF — resident IDs written with separators the recognizers did not know.

Attack (a careless provider, a consumer who wants the rows): the IDs of a dataset are
written ``370102<sep>19500101<sep>0003`` with ``<sep>`` one of the many other dashes,
spaces, dots and invisible characters of Unicode — a zero-width space, a thin or narrow
no-break space, a byte-order mark, an em dash, a middle dot, a slash, a tab … Before the
fix no recognizer matched them; with each ID on a few rows the column was not key-like
either, the dataset was graded L2, and an extract (可用可取) delivered every ID unmasked.

Guarantee: each written form is found as ``CN_RESIDENT_ID`` in every row, the dataset is
L4, and no extract of it is given out; the same values in free text are found too.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from desensitize.recognizers.resident_id import is_valid_id
from quanguard.auth import Principal
from quanguard.container import Container
from tests.conftest import auth
from tests.quanguard.test_exchange_flows import csv_bytes, resident_id
from tests.security.test_seams_exchange import denials, register

PROV, BANK = "市卫健委", "某银行"

ODD = {
    "zero-width space": "\u200b", "word joiner": "\u2060", "byte-order mark": "\ufeff",
    "soft hyphen": "\u00ad", "thin space": "\u2009", "narrow no-break space": "\u202f",
    "figure space": "\u2007", "em space": "\u2003", "tab": "\t", "em dash": "\u2014",
    "horizontal bar": "\u2015", "small hyphen-minus": "\ufe63", "hyphen bullet": "\u2043",
    "middle dot": "\u00b7", "katakana middle dot": "\u30fb", "slash": "/",
    "full-width slash": "\uff0f", "underscore": "_",
    # a separator of up to three characters: ``370102 - 19500101 - 0003``
    "double hyphen": "--", "spaced hyphen": " - ", "spaced em dash": " \u2014 ",
}


def written(rid: str, sep: str) -> str:
    return f"{rid[:6]}{sep}{rid[6:14]}{sep}{rid[14:]}"


@pytest.fixture
def keys(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> dict[str, str]:
    return {"prov": make_key("provider", org=PROV)[0], "bank": make_key("consumer", org=BANK)[0]}


@pytest.mark.parametrize("name", list(ODD))
def test_ids_with_odd_separators_are_valid_ids(name: str) -> None:
    assert is_valid_id(written(resident_id(7), ODD[name]))


@pytest.mark.parametrize("name", list(ODD))
def test_ids_with_odd_separators_are_found_in_text(client: TestClient, make_key: Callable[..., tuple[str, Principal]], name: str) -> None:
    key, _ = make_key("manager")
    rid = written(resident_id(11), ODD[name])
    r = client.post("/v1/scan", headers=auth(key), json={"text": f"申请人身份证号 {rid} 已核验"})
    assert r.status_code == 200, r.text
    assert "CN_RESIDENT_ID" in {f["entity"] for f in r.json()["findings"]}, (name, r.json())


@pytest.mark.parametrize("name", list(ODD))
def test_ids_with_odd_separators_grade_l4_and_are_not_extracted(client: TestClient, keys: dict[str, str], container: Container, name: str) -> None:
    n = 300
    ids = [written(resident_id(i // 3), ODD[name]) for i in range(n)]  # each on 3 rows: not key-like
    rnd = random.Random(1)
    r = register(client, keys["prov"], "people", csv_bytes({"rid": ids, "n": [rnd.randint(0, 5) for _ in range(n)]}),
                 key_column="rid")
    assert r.status_code == 201, r.text
    assert r.json()["grade"] == "L4", (name, r.json()["grade"], r.json()["columns"])
    e = client.post("/v1/exchange/extract", headers=auth(keys["bank"]), json={"dataset": "people"})
    assert e.status_code == 403, (name, e.text[:200])
    assert ids[0] not in e.text
    assert denials(container, "exchange.extract")


DECORATED = {"spreadsheet text mark": "'{}", "spreadsheet formula": '="{}"', "brackets": "[{}]",
             "hash mark": "#{}", "corner brackets": "「{}」"}


@pytest.mark.parametrize("name", list(DECORATED))
def test_decorated_ids_grade_l4_and_are_not_extracted(client: TestClient, keys: dict[str, str], name: str) -> None:
    """A cell holding one ID between a few marks (``'370102…``, ``="370102…"``) is that ID."""
    n = 300
    ids = [DECORATED[name].format(resident_id(i // 3)) for i in range(n)]
    assert is_valid_id(ids[0])
    r = register(client, keys["prov"], "people", csv_bytes({"rid": ids, "n": [i % 5 for i in range(n)]}),
                 key_column="rid")
    assert r.status_code == 201, r.text
    assert r.json()["grade"] == "L4", (name, r.json()["grade"], r.json()["columns"])
    e = client.post("/v1/exchange/extract", headers=auth(keys["bank"]), json={"dataset": "people"})
    assert e.status_code == 403 and resident_id(0) not in e.text, (name, e.text[:200])


SHAPES = {"a mark between every digit": lambda v: "\u200b".join(v),
          "groups of four": lambda v: " ".join(v[i:i + 4] for i in range(0, 18, 4)),
          "a label before": lambda v: f"ID:{v}"}


@pytest.mark.parametrize("name", list(SHAPES))
def test_ids_in_any_grouping_grade_l4_and_are_not_extracted(client: TestClient, keys: dict[str, str], name: str) -> None:
    """A cell is one ID whatever its grouping: separators may stand between any digits."""
    n = 300
    ids = [SHAPES[name](resident_id(i // 3)) for i in range(n)]
    assert is_valid_id(ids[0])
    r = register(client, keys["prov"], "people", csv_bytes({"rid": ids, "n": [i % 5 for i in range(n)]}),
                 key_column="rid")
    assert r.status_code == 201, r.text
    assert r.json()["grade"] == "L4", (name, r.json()["grade"], r.json()["columns"])
    e = client.post("/v1/exchange/extract", headers=auth(keys["bank"]), json={"dataset": "people"})
    assert e.status_code == 403 and ids[0] not in e.text, (name, e.text[:200])
