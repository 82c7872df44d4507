"""Issue 17: what leakers actually do — rounding, dropped keys, edits — and a statistician's
eye. One test per attack on the issue's table (编号, 街道, 年龄, 月收入, 公积金缴存额, 用电量,
缴费月数), 1,000 registered recipients; nothing is asserted by fiat.
"""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from tests.watermark import attacks
from tests.watermark.conftest import SECRET, registered
from tests.watermark.stats import chi2_two_sample, column_tests, unmarked_masked_copy
from watermark import EmbedReport, IssuedCopy, Params, Verdict, detect_table, embed_table

RECIPIENTS = [f"consumer-{i:04d}" for i in range(1000)]
LEAKER = RECIPIENTS[417]
ROWS = 6000
MEASURES = ("月收入", "公积金缴存额", "用电量")


@pytest.fixture(scope="module")
def leak() -> tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]]:
    table = attacks.issue_table(ROWS, seed=17)
    marked, rep = embed_table(table, SECRET, LEAKER)
    return table, marked, rep, registered(SECRET, rep.plan, RECIPIENTS)


def _named(v: Verdict, *, rows_at_least: int = 1) -> None:
    assert v.verdict == "match", v.message
    assert v.recipient == LEAKER
    assert [c.recipient for c in v.candidates if c.accused] == [LEAKER]
    assert v.candidates[0].p_adjusted < 1e-6
    assert v.evidence["recipients_tested"] == 1000
    assert v.evidence["rows_used"] >= rows_at_least


@pytest.mark.parametrize("english", [False, True])
def test_every_measure_of_the_issue_table_is_marked(english: bool) -> None:
    table = attacks.issue_table(3000, seed=3, english=english)
    _, rep = embed_table(table, SECRET, LEAKER)
    names = attacks.ENGLISH_COLUMNS if english else attacks.ISSUE_COLUMNS
    assert set(rep.plan.numeric_columns) == {names[3], names[4], names[5]}
    assert rep.plan.key_columns == (names[0],)
    for kept in (names[0], names[1], names[2], names[6]):  # id, street, age, months: untouched
        assert kept not in rep.plan.marked_columns


def _attack(name: str, rep: EmbedReport) -> attacks.Attack:
    num = rep.plan.numeric_columns
    key = rep.plan.key_columns[0]
    return {
        "round to 10": attacks.round_to(10, num),
        "round to 100": attacks.round_to(100, num),
        "drop the key column": attacks.drop(key),
        "±2 on 50% of marked values": attacks.bump(num, 2, 0.5),
        "5% subset": attacks.keep_rows(ROWS // 20),
        "CSV → XLSX → CSV": attacks.csv_xlsx_csv,
        "shuffle rows and columns": attacks.shuffle,
        "re-encode to GBK": attacks.gbk,
        "±1 in the last digit of every marked value": attacks.bump(num, 1, 1.0),
        "±111 on every marked value": attacks.bump(num, 111, 1.0, units=True),
        "round to 10 + drop key + 30% subset": attacks.chain(
            attacks.round_to(10, num), attacks.drop(key), attacks.keep_rows(ROWS * 3 // 10)),
    }[name]


@pytest.mark.parametrize("name", [
    "round to 10", "round to 100", "drop the key column", "±2 on 50% of marked values",
    "5% subset", "CSV → XLSX → CSV", "shuffle rows and columns", "re-encode to GBK",
    "±1 in the last digit of every marked value", "±111 on every marked value",
    "round to 10 + drop key + 30% subset"])
def test_leaker_named_after(leak: tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]], name: str) -> None:
    _, marked, rep, copies = leak
    suspect = _attack(name, rep)(marked, random.Random(5))
    _named(detect_table(suspect, SECRET, copies))


def test_rounding_really_rounds(leak: tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]]) -> None:
    table, marked, rep, _ = leak
    out = attacks.round_to(100, rep.plan.numeric_columns)(marked, random.Random(1))
    assert attacks.rounded_columns(table, 100, rep.plan.numeric_columns) == ("月收入",)
    assert all(int(v) % 100 == 0 for v in out.column("月收入").to_pylist())
    out = attacks.round_to(10, rep.plan.numeric_columns)(marked, random.Random(1))
    assert all(int(v) % 10 == 0 for c in MEASURES for v in out.column(c).to_pylist())


@pytest.mark.parametrize("other", ["街道", "年龄", "月收入", "公积金缴存额", "用电量", "缴费月数"])
def test_leaker_named_without_the_key_and_one_more_column(leak: tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]], other: str) -> None:
    _, marked, rep, copies = leak
    suspect = attacks.drop(rep.plan.key_columns[0], other)(marked, random.Random(2))
    _named(detect_table(suspect, SECRET, copies))


def test_one_or_two_edited_identity_columns_are_tolerated(leak: tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]]) -> None:
    """Without the key, 年龄 and 街道 rewritten: the quasi-identifier sets that did not use
    them still find the rows."""
    _, marked, rep, copies = leak
    rng = np.random.default_rng(3)
    t = marked.drop_columns([rep.plan.key_columns[0]])
    ages = [str(int(a) + int(d)) for a, d in zip(t.column("年龄").to_pylist(),
                                                 rng.choice([-1, 1], t.num_rows), strict=True)]
    t = t.set_column(t.column_names.index("年龄"), "年龄", pa.array(ages))
    t = t.set_column(t.column_names.index("街道"), "街道",
                     pa.array([s[:2] for s in t.column("街道").to_pylist()]))
    _named(detect_table(t, SECRET, copies))


def test_detection_reports_each_carrier_combined_and_what_matched() -> None:
    table = attacks.sample_table(6000, seed=8)
    marked, rep = embed_table(table, SECRET, LEAKER)
    from dataclasses import replace

    copies = [replace(c, rows=rep.rows) for c in registered(SECRET, rep.plan, RECIPIENTS)]
    v = detect_table(attacks.keep_fraction(marked, random.Random(1), 0.5), SECRET, copies)
    _named(v)
    carriers = v.evidence["carriers"]
    assert {"numeric", "date", "pattern", "combined"} <= set(carriers)
    for stat in carriers.values():
        assert stat["p_value"] < 1e-6 and stat["agreement"] == stat["bits"] > 0
    assert 0.1 < v.evidence["share_of_copy"] <= 0.5
    assert v.evidence["rows_used"] <= v.evidence["rows_seen"] == 3000
    assert any(s["role"] == "key" and s["present"] for s in v.evidence["sources"])


def test_marks_are_invisible_to_chi_square_and_ks_on_10000_rows() -> None:
    for table in (attacks.issue_table(10_000, seed=7), attacks.sample_table(10_000, seed=7)):
        marked, rep = embed_table(table, SECRET, LEAKER)
        for c in rep.plan.carriers:
            before = table.column(c.name).to_pylist()
            if c.kind == "pattern":
                before = unmarked_masked_copy(before)
            tests = column_tests(c.kind, before, marked.column(c.name).to_pylist(), c.levels)
            assert tests and min(tests.values()) > 0.01, (c.name, tests)


def test_no_digit_is_avoided_by_the_marks(leak: tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]]) -> None:
    table, marked, _, _ = leak
    for name in MEASURES:
        moved = [b for a, b in zip(table.column(name).to_pylist(),
                                   marked.column(name).to_pylist(), strict=True) if a != b]
        last = [v[-1] for v in moved]
        # the digits of changed values are spread over all ten digits like the others
        assert set(last) == set("0123456789")
        everything = [v[-1] for v in table.column(name).to_pylist()]
        assert chi2_two_sample(last, everything)[1] > 0.01


def test_usability_bound_per_value_and_per_column(leak: tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]]) -> None:
    table, marked, rep, _ = leak
    for c in rep.columns:
        before = np.array(table.column(c.name).to_pylist(), dtype=float)
        after = np.array(marked.column(c.name).to_pylist(), dtype=float)
        assert (np.abs(after - before) <= rep.plan.max_rel_error * np.abs(before) + 1e-9).all()
        assert abs(after.sum() - before.sum()) / before.sum() < 1e-3
        assert c.relative_shift is not None and c.relative_shift < 1e-3


@pytest.mark.parametrize("seed", range(3))
def test_no_innocent_is_accused_after_the_same_attacks(leak: tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]], seed: int) -> None:
    _, _, rep, copies = leak
    clean = attacks.issue_table(ROWS, seed=500 + seed)
    for suspect in (clean, embed_table(clean, SECRET, "not-registered")[0],
                    embed_table(clean, b"other-key-0123456789abcdef012345", LEAKER)[0]):
        for name in ("round to 10", "drop the key column", "5% subset"):
            try:
                v = detect_table(_attack(name, rep)(suspect, random.Random(seed)), SECRET, copies)
            except Exception as exc:  # noqa: BLE001 - a refusal is fine, an accusation is not
                assert getattr(exc, "kind", None) == "invalid"
                continue
            assert v.verdict == "none" and not any(c.accused for c in v.candidates)


def test_two_colluders_mixing_rows_name_a_colluder(leak: tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]]) -> None:
    table, marked_a, _, copies = leak
    other = RECIPIENTS[12]
    marked_b, _ = embed_table(table, SECRET, other)
    pick = np.random.default_rng(4).random(table.num_rows) < 0.5
    mixed = pa.table({n: pa.array(np.where(pick, marked_a.column(n).to_numpy(zero_copy_only=False),
                                           marked_b.column(n).to_numpy(zero_copy_only=False)))
                      for n in table.column_names})
    v = detect_table(attacks.drop(table.column_names[0])(mixed, random.Random(1)), SECRET, copies)
    accused = {c.recipient for c in v.candidates if c.accused}
    assert v.verdict == "match" and accused and accused <= {LEAKER, other}


def test_a_table_without_carriers_gets_canaries_instead_of_a_refusal() -> None:
    t = pa.table({"编号": [f"A{i:05d}" for i in range(200)],
                  "街道": [attacks.STREETS[i % 12] for i in range(200)]})
    out, rep = embed_table(t, SECRET, LEAKER, Params(canaries=3))
    assert out.num_rows == 203 and rep.plan.carriers == () and len(rep.canary_keys) == 3
    from dataclasses import replace

    copies = registered(SECRET, rep.plan, RECIPIENTS[:5])
    copies.append(replace(registered(SECRET, rep.plan, [LEAKER])[0], canary_keys=rep.canary_keys))
    assert detect_table(out, SECRET, copies).recipient == LEAKER
    assert detect_table(t, SECRET, copies).verdict == "none"


def test_categories_written_two_ways_carry_marks_without_changing_their_counts() -> None:
    """A column that already writes 男/男性 and 女/女性: marked cells take the other
    spelling, as many one way as the other, so every spelling keeps its count."""
    rng = np.random.default_rng(6)
    n = 6000
    sex = [("男", "男性", "女", "女性")[i] for i in rng.choice(4, n, p=[0.35, 0.15, 0.3, 0.2])]
    t = pa.table({"编号": [f"P{i:06d}" for i in range(n)], "性别": sex,
                  "街道": [attacks.STREETS[i] for i in rng.integers(0, 12, n)],
                  "年龄": [str(v) for v in rng.integers(18, 81, n)]})
    marked, rep = embed_table(t, SECRET, LEAKER, Params(gamma=4))
    carrier = next(c for c in rep.plan.carriers if c.name == "性别")
    assert carrier.kind == "category" and ("女", "女性") in carrier.variants
    changed = sum(a != b for a, b in zip(sex, marked.column("性别").to_pylist(), strict=True))
    assert changed > 100
    from collections import Counter

    assert Counter(sex) == Counter(marked.column("性别").to_pylist())
    assert column_tests("category", sex, marked.column("性别").to_pylist())["χ² categories"] > 0.99
    v = detect_table(marked.drop_columns(["编号"]), SECRET, registered(SECRET, rep.plan, RECIPIENTS))
    _named(v)
    assert "category" in v.evidence["carriers"]


def test_a_profile_can_keep_every_marked_column_invisible() -> None:
    table = attacks.sample_table(10_000, seed=9)
    marked, rep = embed_table(table, SECRET, LEAKER, Params(mark_masked=False))
    assert "phone" not in rep.plan.marked_columns and rep.plan.carriers
    assert marked.column("phone").equals(table.column("phone"))
    for c in rep.plan.carriers:
        tests = column_tests(c.kind, table.column(c.name).to_pylist(),
                             marked.column(c.name).to_pylist(), c.levels)
        assert min(tests.values()) > 0.01, (c.name, tests)
    assert detect_table(marked, SECRET, registered(SECRET, rep.plan, RECIPIENTS)).recipient \
        == LEAKER
