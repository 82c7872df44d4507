"""Budget families and the unit of privacy, tried as a careless provider (or one who wants
a fresh budget for the same people) would.

* F5 — a provider registered the city's 1,000 members, then the 历下区 extract of the same
  members (326 people; Jaccard of the two ≈ 0.33 < 0.5). The extract got its own budget
  family: the same people carried two full ε budgets and two sets of PSI limits. The same
  happened with the extract registered first and the city after it, and with a dataset
  that shares half of its people with an existing one.
* F6 — a provider registered 600 rows of different residents plus 300 rows of ONE
  resident, with the resident-ID column present (graded L4 by the scanner) but no
  ``key_column``. Every row counted as a different person, so the one-person group
  "长清区" passed ``min_group_size`` 50 in a count-by-district and was released, and the
  noise assumed one row per person. The same with the identifier under a meaningless
  header ("c7").

The budget-family tests at the bottom use the sketches directly (a fixed key, no HTTP):
sketches of sets larger than ``SKETCH_SIZE`` are samples, and these tests cover the
estimates as well as the exact small-set case; they also pin what must NOT merge
(unrelated datasets of a similar size, a 5-row dataset, the second of two families).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence

import httpx2
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from exchange.family import SKETCH_SIZE, choose_family, sketch, sketches, subject_columns
from quanguard.auth import Principal
from tests.conftest import auth
from tests.quanguard.test_exchange_flows import csv_bytes, resident_id

PROV, BANK = "市卫健委", "某银行"


@pytest.fixture
def keys(make_key: Callable[..., tuple[str, Principal]]) -> dict[str, str]:
    return {"prov": make_key("provider", org=PROV)[0], "bank": make_key("consumer", org=BANK)[0],
            "mgr": make_key("manager")[0]}


def register(client: TestClient, key: str, name: str, body: bytes, **data: object) -> httpx2.Response:
    return client.post("/v1/exchange/datasets", headers=auth(key), data={"name": name, **data},
                       files={"file": (f"{name}.csv", body, "text/csv")})


def city(n: int = 1000, seed: int = 1) -> tuple[list[str], list[str], list[int]]:
    rnd = random.Random(seed)
    return ([f"M{i:06d}" for i in range(n)],
            [rnd.choice(["历下区", "市中区", "槐荫区"]) for _ in range(n)],
            [rnd.randint(0, 30_000) for _ in range(n)])


def rows(mem: Sequence[str], dist: Sequence[str], inc: Sequence[int], pick: Iterable[int]) -> bytes:
    idx = list(pick)
    return csv_bytes({"member": [mem[i] for i in idx], "district": [dist[i] for i in idx],
                      "income": [inc[i] for i in idx]})


def message(r: httpx2.Response) -> str:
    return str(r.json()["error"]["message"])


SUM = {"agg": "sum", "column": "income", "epsilon": 2.0}  # the L2 cap is 2.0


# -- F5: a subset of the same people shares the superset's budget ------------------------------

def test_F5_a_district_extract_of_the_same_people_shares_the_city_budget(client: TestClient, keys: dict[str, str]) -> None:
    mem, dist, inc = city()
    assert register(client, keys["prov"], "city", rows(mem, dist, inc, range(1000)),
                    key_column="member", bounds="income=0:30000").status_code == 201
    sub = [i for i in range(1000) if dist[i] == "历下区"]  # ~1/3 of the same people
    r = register(client, keys["prov"], "lixia", rows(mem, dist, inc, sub), key_column="member",
                 bounds="income=0:30000")
    assert r.status_code == 201, r.text
    assert r.json()["budget_family"] == "city"
    a = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                    json={"dataset": "city", "where": {"district": "历下区"}, **SUM})
    assert a.status_code == 200, a.text
    b = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]), json={"dataset": "lixia", **SUM})
    assert b.status_code == 403 and "budget" in message(b), b.text


def test_the_superset_registered_after_its_subset_joins_the_subset_family(client: TestClient, keys: dict[str, str]) -> None:
    mem, dist, inc = city()
    sub = [i for i in range(1000) if dist[i] == "历下区"]
    assert register(client, keys["prov"], "lixia", rows(mem, dist, inc, sub), key_column="member",
                    bounds="income=0:30000").status_code == 201
    r = register(client, keys["prov"], "city", rows(mem, dist, inc, range(1000)),
                 key_column="member", bounds="income=0:30000")
    assert r.status_code == 201 and r.json()["budget_family"] == "lixia", r.text
    assert client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                       json={"dataset": "lixia", **SUM}).status_code == 200
    b = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                    json={"dataset": "city", "where": {"district": "历下区"}, **SUM})
    assert b.status_code == 403 and "budget" in message(b), b.text


def test_an_extract_registered_without_its_key_column_still_joins(client: TestClient, keys: dict[str, str]) -> None:
    mem, dist, inc = city()
    assert register(client, keys["prov"], "city", rows(mem, dist, inc, range(1000)),
                    key_column="member").status_code == 201
    sub = [i for i in range(1000) if dist[i] == "历下区"]
    r = register(client, keys["prov"], "lixia", rows(mem, dist, inc, sub))  # no key_column
    assert r.status_code == 201 and r.json()["budget_family"] == "city", r.text


def test_a_dataset_sharing_half_of_its_people_joins_the_family(client: TestClient, keys: dict[str, str]) -> None:
    mem, dist, inc = city(1200)
    assert register(client, keys["prov"], "north", rows(mem, dist, inc, range(600)),
                    key_column="member").status_code == 201
    # 300 of north's 600 people, among 600 others: Jaccard 300/1200 = 0.25, containment 0.5
    r = register(client, keys["prov"], "south", rows(mem, dist, inc, range(300, 1200)), key_column="member")
    assert r.status_code == 201 and r.json()["budget_family"] == "north", r.text


def test_unrelated_people_of_a_similar_size_keep_their_own_budget(client: TestClient, keys: dict[str, str]) -> None:
    ids = [resident_id(i) for i in range(1000)]
    assert register(client, keys["prov"], "a", csv_bytes({"rid": ids, "n": list(range(1000))}),
                    key_column="rid").status_code == 201
    # a thousand other residents, 30 of whom happen to be in "a" too (3 %)
    others = [resident_id(i) for i in range(3000, 3970)] + ids[:30]
    r = register(client, keys["prov"], "b", csv_bytes({"rid": others, "n": list(range(1000))}),
                 key_column="rid")
    assert r.status_code == 201 and r.json()["budget_family"] == "b", r.text


def test_a_five_row_dataset_does_not_merge_on_two_shared_people(client: TestClient, keys: dict[str, str]) -> None:
    mem, dist, inc = city()
    assert register(client, keys["prov"], "city", rows(mem, dist, inc, range(1000)),
                    key_column="member").status_code == 201
    tiny = csv_bytes({"member": [mem[0], mem[1], "Q000001", "Q000002", "Q000003"],
                      "district": ["历下区"] * 5, "income": [1, 2, 3, 4, 5]})
    r = register(client, keys["prov"], "tiny", tiny, key_column="member")
    assert r.status_code == 201 and r.json()["budget_family"] == "tiny", r.text


# -- F6: identifiers without a key column ------------------------------------------------------

def _visits(header: str = "rid") -> bytes:
    rnd = random.Random(4)
    ids = [resident_id(i) for i in range(600)]
    dist = [rnd.choice(["历下区", "市中区"]) for _ in range(600)]
    ids += [resident_id(9999)] * 300  # one person, 300 rows
    dist += ["长清区"] * 300
    return csv_bytes({header: ids, "district": dist, "v": [1] * 900})


def test_F6_identifiers_without_a_key_column_are_refused_naming_them(client: TestClient, keys: dict[str, str]) -> None:
    r = register(client, keys["prov"], "visits", _visits())
    assert r.status_code == 400, r.text
    text = message(r)
    assert "'rid'" in text and "key_column" in text, text
    assert client.get("/v1/exchange/datasets/visits", headers=auth(keys["mgr"])).status_code == 404


def test_F6_following_the_advice_suppresses_the_one_person_group(client: TestClient, keys: dict[str, str]) -> None:
    r = register(client, keys["prov"], "visits", _visits(), key_column="rid")
    assert r.status_code == 400 and "max rows per subject" in message(r), r.text  # 300 rows > 100
    r = register(client, keys["prov"], "visits", _visits(), key_column="rid", max_rows_per_subject="5")
    assert r.status_code == 201 and r.json()["grade"] == "L4" and r.json()["max_contributions"] == 5, r.text
    job = client.post("/v1/exchange/aggregate", headers=auth(keys["bank"]),
                      json={"dataset": "visits", "agg": "count", "by": ["district"], "epsilon": 0.5})
    assert job.status_code == 202 and job.json()["status"] == "pending_approval", job.text  # L4
    done = client.post(f"/v1/exchange/jobs/{job.json()['job']}/approve", headers=auth(keys["mgr"]),
                       json={"reason": "ok"})
    assert done.status_code == 200, done.text
    groups = [row["group"]["district"] for row in done.json()["result"]]
    assert "长清区" not in groups


@pytest.mark.parametrize("header, values", [
    ("c7", [resident_id(i) for i in range(300)] + [resident_id(9999)] * 100),
    ("f2", [f"139{i:08d}" for i in range(300)] + ["13900009999"] * 100),
])
def test_an_identifier_under_a_meaningless_header_is_named(client: TestClient, keys: dict[str, str], header: str, values: list[str]) -> None:
    body = csv_bytes({header: values, "district": ["历下区", "市中区"] * 200})
    r = register(client, keys["prov"], "odd", body)
    assert r.status_code == 400 and f"'{header}'" in message(r) and "key_column" in message(r), r.text


def test_a_declared_row_cap_without_a_key_column_is_no_way_around(client: TestClient, keys: dict[str, str]) -> None:
    # max_rows_per_subject counts rows per key value: without a key it bounds nothing
    r = register(client, keys["prov"], "visits", _visits(), max_rows_per_subject="1")
    assert r.status_code == 400 and "key_column" in message(r), r.text
    plain = csv_bytes({"district": ["历下区", "市中区"] * 100, "v": list(range(200))})
    r = register(client, keys["prov"], "plain_capped", plain, max_rows_per_subject="3")
    assert r.status_code == 400 and "key_column" in message(r), r.text


def test_a_dataset_without_identifiers_registers_as_before(client: TestClient, keys: dict[str, str]) -> None:
    plain = csv_bytes({"district": ["历下区", "市中区"] * 100, "v": list(range(200))})
    r = register(client, keys["prov"], "plain", plain)
    assert r.status_code == 201 and r.json()["key_columns"] == [] and r.json()["max_contributions"] == 1, r.text
    mem, dist, inc = city(400)  # member numbers are not identifiers the scanner names
    r = register(client, keys["prov"], "members", rows(mem, dist, inc, range(400)))
    assert r.status_code == 201 and r.json()["key_columns"] == [], r.text


# -- the sketches: estimates beyond SKETCH_SIZE, tiny sets, two families -----------------------

KEY = b"k" * 32


def sk(values: Iterable[str]) -> dict[str, list[int]]:
    return {"member": sketch(values, KEY)}


def ids(rng: Iterable[int], prefix: str = "M") -> list[str]:
    return [f"{prefix}{i:07d}" for i in rng]


def test_a_sampled_subset_joins_its_superset_from_either_side() -> None:
    big, part = sk(ids(range(6000))), sk(ids(range(0, 6000, 3)))  # both sketches are samples
    assert len(big["member"]) == len(part["member"]) == SKETCH_SIZE
    fam, score = choose_family(part, [("city", "city", big)], threshold=0.5)
    assert fam == "city" and score == pytest.approx(1.0)
    fam, score = choose_family(big, [("lixia", "lixia", part)], threshold=0.5)
    assert fam == "lixia" and score == pytest.approx(1.0)
    # two thirds of a sampled dataset's people in another one
    fam, score = choose_family(sk(ids(range(2000, 8000))), [("city", "city", big)], threshold=0.5)
    assert fam == "city" and score == pytest.approx(2 / 3, abs=0.08)


def test_unrelated_sets_of_a_similar_size_do_not_merge() -> None:
    a = sk(ids(range(6000)))
    assert choose_family(sk(ids(range(6000), "Q")), [("a", "a", a)], threshold=0.5) == (None, 0.0)
    # 10 % shared, sampled and exact
    fam, score = choose_family(sk(ids(range(5400, 11400))), [("a", "a", a)], threshold=0.5)
    assert fam is None and score < 0.2
    fam, score = choose_family(sk(ids(range(900, 1900))), [("a1k", "a1k", sk(ids(range(1000))))],
                               threshold=0.5)
    assert fam is None and score == pytest.approx(0.1)


def test_a_five_row_dataset_does_not_merge_by_chance() -> None:
    family = sk(ids(range(20_000)))  # a sample: the values below its cut are ~5 % of them
    cut = max(family["member"])
    inside = next(v for v in ids(range(20_000)) if sketch([v], KEY)[0] <= cut)
    outside = [v for v in ids(range(10_000), "Q") if sketch([v], KEY)[0] > cut][:4]
    # one shared person is the only one of the five that the sample can see: 1 of 1
    fam, _ = choose_family(sk([inside, *outside]), [("fam", "fam", family)], threshold=0.5)
    assert fam is None
    small = sk(ids(range(800)))  # exact: 3 of 5 shared is 0.6, but 5 people are too few to tell
    fam, _ = choose_family(sk(ids(range(3)) + ids(range(2), "Q")), [("small", "small", small)],
                           threshold=0.5)
    assert fam is None
    # fewer than MIN_CONTAINMENT_SAMPLE people are linked only by Jaccard (as before): such a
    # dataset cannot release a group where min_group_size is 10 or more (every grade above L1)
    fam, _ = choose_family(sk(ids(range(5))), [("small", "small", small)], threshold=0.5)
    assert fam is None
    fam, _ = choose_family(sk(ids(range(5))), [("five", "five", sk(ids(range(6))))], threshold=0.5)
    assert fam == "five"  # near-identical small sets still merge on Jaccard


def test_a_dataset_overlapping_two_families_joins_the_one_holding_most_of_its_people() -> None:
    big = sk(ids(range(2000)))            # family "big": 600 of the new dataset's 700 people
    small = sk(ids(range(5000, 5100)))    # family "small": all of its 100 people are in it
    new = sk(ids(range(600)) + ids(range(5000, 5100)))
    existing = [("small", "small", small), ("big", "big", big)]
    fam, score = choose_family(new, existing, threshold=0.5)
    assert fam == "big" and score >= 0.5
    assert choose_family(new, list(reversed(existing)), threshold=0.5)[0] == "big"
    # a family's later members are compared too, and the family (not the member) is returned
    fam, _ = choose_family(sk(ids(range(5000, 5080))),
                           [("big", "big", big), ("small_v2", "small", small)], threshold=0.5)
    assert fam == "small"


def test_row_numbers_and_dates_link_nobody() -> None:
    year = pa.table({"day": [f"2024-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)],
                     "n": [str(i) for i in range(336)]})
    spring = year.slice(0, 60)
    cols = subject_columns(year, keys=[], identifiers=[])
    assert list(cols) == ["day"] and cols.inferred == {"day"}  # "n": row numbers, not people
    # two columns that are subjects only because their values are all distinct: Jaccard
    fam, score = choose_family(sketches(spring, subject_columns(spring, keys=[], identifiers=[]), KEY),
                               [("year", "year", sketches(year, cols, KEY))], threshold=0.5)
    assert fam is None and score == pytest.approx(60 / 336)
    # a declared key (or identifier) on either side: containment
    keyed = sketches(spring, subject_columns(spring, keys=["day"], identifiers=[]), KEY)
    assert choose_family(keyed, [("year", "year", sketches(year, cols, KEY))], threshold=0.5)[0] == "year"


def test_organisations_and_remarks_are_not_people_to_key(client: TestClient, keys: dict[str, str]) -> None:
    """The key-column refusal is about people: a register of enterprises by their credit
    codes (统一社会信用代码), or a table whose remark column mentions a phone number now and
    then, has no person to count rows by — refusing them only taught providers to declare
    any column as the key."""
    from tests.desensitize.data.pii_gen import uscc

    rnd = random.Random(5)
    firms = csv_bytes({"统一社会信用代码": [uscc(rnd) for _ in range(300)],
                       "行业": [rnd.choice(["制造业", "零售业", "软件业"]) for _ in range(300)],
                       "注册资本": [rnd.randint(10, 5000) for _ in range(300)]})
    r = register(client, keys["prov"], "firms", firms)
    assert r.status_code == 201, r.text
    notes = csv_bytes({"district": [rnd.choice(["历下区", "市中区"]) for _ in range(300)],
                       "备注": [f"回访电话13812345{i % 1000:03d}" if i % 7 == 0 else "已办结" for i in range(300)],
                       "v": list(range(300))})
    r = register(client, keys["prov"], "notes", notes)
    assert r.status_code == 201, r.text
    # a column of people's phone numbers still needs its key
    phones = csv_bytes({"联系电话": [f"138{i:08d}" for i in range(300)], "v": list(range(300))})
    r = register(client, keys["prov"], "phones", phones)
    assert r.status_code == 400 and "联系电话" in message(r), r.text
