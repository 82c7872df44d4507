"""Masked values and pseudonyms carry marks in a keyed choice between equivalent
renderings: invisible to a statistician, consistent within a copy, found by value.
One test per attack on an extract written by the masking operators."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize.keys import Keyring
from desensitize.operators import OpContext, apply_operator
from desensitize.operators.basic import hide_one_more as mask_hide_one_more
from tests.watermark import attacks
from tests.watermark.conftest import SECRET, registered
from tests.watermark.stats import column_tests
from tests.watermark.test_formats import masked_values
from watermark import EmbedReport, IssuedCopy, Params, Verdict, detect_table, embed_table
from watermark.masked import MASK_CHARS, hide_one_more, read_patterns, standard_counts
from watermark.pseudonym import _check_char

RECIPIENTS = [f"consumer-{i:04d}" for i in range(1000)]
LEAKER = RECIPIENTS[417]
ROWS = 4000
FAKES = ("联系电话", "银行卡")
VALUE_CARRIERS = ("证件号", "手机号", "联系电话", "银行卡")


@pytest.fixture(scope="module")
def leak() -> tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]]:
    table = attacks.extract_table(ROWS, seed=17)
    marked, rep = embed_table(table, SECRET, LEAKER, Params(pseudonyms=FAKES))
    return table, marked, rep, registered(SECRET, rep.plan, RECIPIENTS)


def _named(v: Verdict) -> None:
    assert v.verdict == "match", v.message
    assert v.recipient == LEAKER and v.candidates[0].p_adjusted < 1e-6
    assert [c.recipient for c in v.candidates if c.accused] == [LEAKER]


def test_every_masked_and_pseudonym_column_carries_marks(leak: tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]]) -> None:
    _, _, rep, _ = leak
    kinds = {c.name: (c.kind, c.form) for c in rep.plan.carriers}
    assert kinds["证件号"] == ("pseudonym", "hex")  # hash pseudonyms: found by their values
    assert kinds["手机号"] == ("pattern", "")
    assert kinds["联系电话"] == ("pseudonym", "digit")  # fakes: only where named
    assert kinds["银行卡"] == ("pseudonym", "luhn")
    assert all(c.marked > 0 for c in rep.columns)


def test_fakes_are_not_marked_unless_named() -> None:
    table = attacks.extract_table(2000, seed=3)
    _, rep = embed_table(table, SECRET, LEAKER)
    assert not set(FAKES) & set(rep.plan.marked_columns)


def _attack(name: str, rep: EmbedReport) -> attacks.Attack:
    key = rep.plan.key_columns[0]
    only = {f"only {c} left, key dropped, 30% subset": attacks.chain(
        attacks.drop(key, *[m for m in rep.plan.marked_columns if m != c]),
        attacks.keep_rows(ROWS * 3 // 10)) for c in VALUE_CARRIERS}
    return {
        "drop the key column": attacks.drop(key),
        "10% subset": attacks.keep_rows(ROWS // 10),
        "CSV → XLSX → CSV": attacks.csv_xlsx_csv,
        "shuffle rows and columns": attacks.shuffle,
        "re-encode to GBK": attacks.gbk,
        **only,
    }[name]


@pytest.mark.parametrize("name", [
    "drop the key column", "10% subset", "CSV → XLSX → CSV", "shuffle rows and columns",
    "re-encode to GBK", *[f"only {c} left, key dropped, 30% subset" for c in VALUE_CARRIERS]])
def test_leaker_named_after(leak: tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]], name: str) -> None:
    _, marked, rep, copies = leak
    _named(detect_table(_attack(name, rep)(marked, random.Random(3)), SECRET, copies))


def test_same_input_same_output_within_a_copy_and_formats_hold(leak: tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]]) -> None:
    table, marked, _, _ = leak
    for name in ("证件号", "联系电话", "银行卡", "手机号"):
        seen: dict[str, set[str]] = defaultdict(set)
        for a, b in zip(table.column(name).to_pylist(), marked.column(name).to_pylist(),
                        strict=True):
            seen[a].add(b)
        assert all(len(v) == 1 for v in seen.values()), name
        if name != "手机号":  # pseudonyms stay one-to-one: joins inside the copy hold
            assert len({next(iter(v)) for v in seen.values()}) == len(seen), name
    cards = marked.column("银行卡").to_pylist()
    assert all(_check_char(c[:-1], "luhn") == c[-1] for c in cards)
    changed = sum(a != b for a, b in zip(table.column("证件号").to_pylist(),
                                         marked.column("证件号").to_pylist(), strict=True))
    assert changed > ROWS / 20
    assert all(v.startswith("ID-") and len(v) == 19 for v in marked.column("证件号").to_pylist())


def test_a_masked_value_never_shows_more_than_the_masking_profile(leak: tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]]) -> None:
    table, marked, _, _ = leak
    for a, b in zip(table.column("手机号").to_pylist(), marked.column("手机号").to_pylist(),
                    strict=True):
        assert len(a) == len(b)
        assert all(y == x or y in MASK_CHARS for x, y in zip(a, b, strict=True))
        assert sum(x != y for x, y in zip(a, b, strict=True)) <= 1


def test_masked_values_and_pseudonyms_are_invisible_on_10000_rows() -> None:
    table = attacks.extract_table(10_000, seed=7)
    unmarked = attacks.extract_table(10_000, seed=7, variants=True)
    marked, rep = embed_table(table, SECRET, LEAKER, Params(pseudonyms=FAKES))
    seen = set()
    for c in rep.plan.carriers:
        if c.kind not in ("pattern", "pseudonym"):
            continue
        before = (unmarked if c.kind == "pattern" else table).column(c.name).to_pylist()
        tests = column_tests(c.kind, before, marked.column(c.name).to_pylist())
        assert len(tests) >= 3 and min(tests.values()) > 0.01, (c.name, tests)
        seen.add(c.kind)
    assert seen == {"pattern", "pseudonym"}


def test_the_mask_operator_writes_the_same_mixture_unmarked() -> None:
    phones = pa.array([f"1{39 + i % 50}{i * 7919 % 10**8:08d}" for i in range(4000)])
    ctx = OpContext(keyring=Keyring(b"m" * 32), entity="PHONE_NUMBER")
    plain = apply_operator("mask", phones, {}, ctx)
    mixed = apply_operator("mask", phones, {"variants": True}, ctx)
    more, ok = hide_one_more(plain)
    assert ok.all() and mask_hide_one_more(plain).equals(more)
    pairs = list(zip(plain.to_pylist(), more.to_pylist(), mixed.to_pylist(), strict=True))
    assert all(m in (a, b) for a, b, m in pairs)
    share = sum(m == b for _, b, m in pairs) / len(pairs)
    assert 0.45 < share < 0.55
    again = apply_operator("mask", phones, {"variants": True}, ctx)
    assert again.equals(mixed)  # a keyed coin of the value: the same value, the same form
    assert standard_counts(plain) == ((11, 4),) and standard_counts(mixed) == ()


def test_a_column_already_written_in_both_forms_is_left_alone() -> None:
    table = attacks.extract_table(3000, seed=5, variants=True)
    marked, rep = embed_table(table, SECRET, LEAKER)
    assert "手机号" not in rep.plan.marked_columns
    assert marked.column("手机号").equals(table.column("手机号"))


def test_fake_id_numbers_keep_a_valid_check_character() -> None:
    ring = Keyring(b"f" * 32)
    raw = pa.array([f"3701021990{i % 12 + 1:02d}{i % 28 + 1:02d}{i % 1000:03d}X"
                    for i in range(3000)])
    fakes = apply_operator("fake", raw, {}, OpContext(keyring=ring, entity="CN_RESIDENT_ID"))
    table = pa.table({"编号": [str(i) for i in range(3000)], "证件号码": fakes,
                      "金额": [f"{1000 + i * 37 % 9000}.{i % 100:02d}" for i in range(3000)]})
    marked, rep = embed_table(table, SECRET, LEAKER, Params(pseudonyms=("证件号码",)))
    assert next(c.form for c in rep.plan.carriers if c.name == "证件号码") == "id18"
    out = marked.column("证件号码").to_pylist()
    assert sum(a != b for a, b in zip(fakes.to_pylist(), out, strict=True)) > 100
    assert all(_check_char(v[:-1], "id18") == v[-1] for v in out)
    v = detect_table(marked.select(["证件号码"]), SECRET, registered(SECRET, rep.plan, RECIPIENTS))
    _named(v)


def test_a_column_named_as_pseudonyms_must_look_like_them() -> None:
    table = pa.table({"编号": [str(i) for i in range(500)], "备注": ["无"] * 500,
                      "金额": [f"{1000 + i}.5" for i in range(500)]})
    from watermark import WatermarkError

    with pytest.raises(WatermarkError, match="named as pseudonyms"):
        embed_table(table, SECRET, LEAKER, Params(pseudonyms=("备注",)))


def test_two_colluders_mixing_rows_of_extracts_name_a_colluder(leak: tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]]) -> None:
    table, marked_a, _, copies = leak
    other = RECIPIENTS[12]
    marked_b, _ = embed_table(table, SECRET, other, Params(pseudonyms=FAKES))
    pick = np.random.default_rng(4).random(table.num_rows) < 0.5
    mixed = pa.table({n: pa.array(np.where(pick, marked_a.column(n).to_numpy(zero_copy_only=False),
                                           marked_b.column(n).to_numpy(zero_copy_only=False)))
                      for n in table.column_names if n != "编号"})
    v = detect_table(mixed, SECRET, copies)
    accused = {c.recipient for c in v.candidates if c.accused}
    assert v.verdict == "match" and accused and accused <= {LEAKER, other}


@pytest.mark.parametrize("seed", range(3))
def test_no_innocent_is_accused_on_unmarked_or_foreign_extracts(leak: tuple[pa.Table, pa.Table, EmbedReport, list[IssuedCopy]], seed: int) -> None:
    _, _, _, copies = leak
    clean = attacks.extract_table(ROWS, seed=900 + seed)
    for suspect in (clean, embed_table(clean, SECRET, "not-registered", Params(pseudonyms=FAKES))[0],
                    embed_table(clean, b"other-key-0123456789abcdef012345", LEAKER,
                                Params(pseudonyms=FAKES))[0]):
        v = detect_table(attacks.drop("编号")(suspect, random.Random(seed)), SECRET, copies)
        assert v.verdict == "none" and not any(c.accused for c in v.candidates)


@settings(max_examples=200, deadline=None)
@given(st.lists(masked_values, min_size=1, max_size=40))
def test_form_b_only_hides_and_is_read_back(values: list[str]) -> None:
    arr = pa.array(values, type=pa.string())
    more, ok = hide_one_more(arr)
    for a, b, good in zip(values, more.to_pylist(), ok.tolist(), strict=True):
        if not good:
            continue
        assert len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1
        assert all(y == x or y in MASK_CHARS for x, y in zip(a, b, strict=True))
        assert len(b) - sum(b.count(c) for c in MASK_CHARS) >= 2
    # The standard counts of the A forms read an A cell as 0 and its B form as 1.
    patterns = standard_counts(arr)
    if not patterns:
        return  # two counts for one length: not a form-A column
    salt = np.uint64(7)
    rows_a, _, bits_a = read_patterns(arr, patterns, b"s", salt, gamma=1, code_bits=64)
    rows_b, _, bits_b = read_patterns(more, patterns, b"s", salt, gamma=1, code_bits=64)
    assert rows_a.tolist() == rows_b.tolist() == [i for i, g in enumerate(ok.tolist()) if g]
    assert ((bits_a ^ bits_b) == 1).all()
