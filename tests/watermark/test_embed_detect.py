"""Embedding plans, distortion report, verdicts and bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tests.watermark.attacks import sample_table
from tests.watermark.conftest import registered
from watermark import (
    EmbedReport,
    KeyMismatch,
    MissingKeyColumns,
    NoCommonColumns,
    NoMarkableColumns,
    Params,
    TableTooSmall,
    WatermarkError,
    detect_table,
    embed_table,
)


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return sample_table(4000, seed=11)


@pytest.fixture(scope="module")
def marked(table: pa.Table) -> tuple[pa.Table, EmbedReport]:
    from tests.watermark.conftest import SECRET

    return embed_table(table, SECRET, "alice")


def test_plan_marks_measures_dates_and_masked_pii_never_keys_ids_or_small_numbers(marked: tuple[pa.Table, EmbedReport]) -> None:
    _, rep = marked
    plan = rep.plan
    assert (plan.key_mode, plan.key_columns) == ("primary", ("id",))
    assert set(plan.numeric_columns) == {"income", "area", "tax"}
    assert "phone" in plan.masked_columns
    assert plan.date_columns == ("signup_date",)
    for never in ("id", "age", "district", "name"):
        assert never not in plan.marked_columns
    # rows are found by the key and by quasi-identifier sets that do not need it
    assert plan.sources[0].role == "key" and plan.sources[0].columns == ("id",)
    qi = [s for s in plan.sources if s.role == "qi"]
    assert qi and all("id" not in s.columns for s in qi)


def test_distortion_report_and_untouched_columns(table: pa.Table, marked: tuple[pa.Table, EmbedReport]) -> None:
    out, rep = marked
    assert out.schema == table.schema and out.num_rows == table.num_rows
    for name in ("id", "name", "age", "district"):
        assert out.column(name).equals(table.column(name))
    assert rep.marked_cells > 0 and rep.changed_cells > 0
    assert rep.formats_kept is True
    by_name = {c.name: c for c in rep.columns}
    for name in ("income", "area", "tax"):
        c = by_name[name]
        before = np.array(table.column(name).to_pylist(), dtype=float)
        after = np.array(out.column(name).to_pylist(), dtype=float)
        assert c.mean_before == pytest.approx(before.mean())
        assert c.mean_after == pytest.approx(after.mean())
        assert c.relative_shift is not None and c.relative_shift < 1e-3
        assert abs(after.mean() - before.mean()) / before.mean() < 1e-3
        assert c.marked == pytest.approx(len(before) / rep.plan.gamma, rel=0.25)
        changed = sum(a != b for a, b in zip(table.column(name).to_pylist(),
                                             out.column(name).to_pylist(), strict=True))
        assert changed == c.changed
        levels = {10.0 ** e for e in next(k for k in rep.plan.carriers if k.name == name).levels}
        for a, b in zip(table.column(name).to_pylist(), out.column(name).to_pylist(),
                        strict=True):
            # decimals kept; a change is one step of one level, within the usability bound
            assert a.split(".")[1:] and len(a.split(".")[1]) == len(b.split(".")[1]) \
                or "." not in a and "." not in b
            if a != b:
                step = abs(float(b) - float(a))
                assert min(abs(step - lv) for lv in levels) < 1e-6
                assert step <= rep.plan.max_rel_error * abs(float(a)) + 1e-9
    phone = by_name["phone"]
    assert phone.changed > 0 and phone.mean_before is None


def test_the_recipient_is_named_with_evidence(secret: bytes, marked: tuple[pa.Table, EmbedReport]) -> None:
    out, rep = marked
    copies = registered(secret, rep.plan, ["bob", "carol", "alice", "dave"])
    v = detect_table(out, secret, copies)
    assert v.verdict == "match" and v.recipient == "alice"
    assert v.p_value is not None and v.p_value < 1e-6 / 4
    ev = v.evidence
    assert ev["rows_seen"] == out.num_rows
    assert ev["bits_recovered"] == ev["agreement"] >= 0.9 * rep.plan.code_bits
    assert ev["recipients_tested"] == 4 and "Bonferroni" in ev["correction"]
    assert [c.recipient for c in v.candidates if c.accused] == ["alice"]


def test_typed_numeric_columns_keep_their_type(secret: bytes) -> None:
    rng = np.random.default_rng(2)
    t = pa.table({"id": pa.array(np.arange(3000)), "amount": pa.array(rng.uniform(100, 999, 3000).round(2)),
                  "units": pa.array(rng.integers(1000, 99999, 3000))})
    out, rep = embed_table(t, secret, "alice", Params(gamma=4))
    assert out.schema == t.schema
    assert set(rep.plan.numeric_columns) == {"amount", "units"}
    before = t.column("units").to_numpy()
    diff = np.abs(out.column("units").to_numpy() - before)
    assert (diff > 0).any() and (diff <= 0.02 * before).all()  # within the usability bound
    assert set(np.unique(diff[diff > 0]).tolist()) <= {1, 10, 100, 1000}
    v = detect_table(out, secret, registered(secret, rep.plan, ["alice", "bob"]))
    assert v.recipient == "alice"


def test_virtual_key_when_no_id_column(secret: bytes) -> None:
    t = sample_table(4000, seed=5, with_id=False)
    out, rep = embed_table(t, secret, "alice")
    assert rep.plan.key_mode == "virtual"
    assert rep.plan.sources and all(s.role == "qi" for s in rep.plan.sources)
    for s in rep.plan.sources:  # a marked column joins an identity only in a mark-stable form
        for col, form in zip(s.columns, s.forms, strict=True):
            assert col not in rep.plan.marked_columns or form != "exact"
    shuffled = out.take(pa.array(np.random.default_rng(1).permutation(out.num_rows)))
    v = detect_table(shuffled.select(list(reversed(out.column_names))), secret,
                     registered(secret, rep.plan, ["alice", "bob", "eve"]))
    assert v.recipient == "alice" and v.p_value is not None and v.p_value < 1e-12


@pytest.mark.parametrize("seed", range(3))
def test_unmarked_and_other_key_tables_give_no_accusation(secret: bytes, marked: tuple[pa.Table, EmbedReport], seed: int) -> None:
    _, rep = marked
    copies = registered(secret, rep.plan, [f"r{i}" for i in range(200)] + ["alice"])
    clean = sample_table(4000, seed=100 + seed)
    assert detect_table(clean, secret, copies).verdict == "none"
    other, _ = embed_table(clean, b"another-secret", "alice")
    v = detect_table(other, secret, copies)
    assert v.verdict == "none" and v.recipient is None
    assert v.message.startswith("no watermark found")


def test_wrong_key_is_an_error_not_a_verdict(secret: bytes, marked: tuple[pa.Table, EmbedReport]) -> None:
    out, rep = marked
    with pytest.raises(KeyMismatch) as exc:
        detect_table(out, b"wrong-key", registered(secret, rep.plan, ["alice"]))
    assert exc.value.kind == "integrity" and "wmk-" in str(exc.value)


def test_suspect_without_the_marked_columns(secret: bytes, marked: tuple[pa.Table, EmbedReport]) -> None:
    out, rep = marked
    copies = registered(secret, rep.plan, ["alice"])
    with pytest.raises(NoCommonColumns) as exc:
        detect_table(pa.table({"x": ["1"], "y": ["2"]}), secret, copies)
    assert exc.value.kind == "invalid" and "income" in str(exc.value)
    # without the key the quasi-identifier sets still find the rows ...
    assert detect_table(out.drop_columns(["id"]), secret, copies).recipient == "alice"
    # ... without every column rows are found by, the masked values still carry marks
    # found by their own values ...
    finders = {c for s in rep.plan.sources for c in s.columns}
    assert detect_table(out.drop_columns(sorted(finders)), secret, copies).recipient == "alice"
    # ... and without those too, nothing can be located
    by_value = {c.name for c in rep.plan.carriers if c.kind in ("pattern", "pseudonym")}
    assert by_value
    with pytest.raises(MissingKeyColumns) as exc2:
        detect_table(out.drop_columns(sorted(finders | by_value)), secret, copies)
    assert "id" in str(exc2.value)


def test_small_suspect_says_how_much_is_missing(secret: bytes, marked: tuple[pa.Table, EmbedReport]) -> None:
    out, rep = marked
    v = detect_table(out.slice(0, 30), secret, registered(secret, rep.plan, ["alice", "bob"]))
    assert v.verdict == "none"
    assert "needed" in v.message and "more marked cells" in v.message
    assert v.evidence["bits_recovered"] < v.evidence["bits_needed"]


def test_table_too_small_to_carry_a_mark(secret: bytes) -> None:
    t = sample_table(40, seed=3)
    with pytest.raises(TableTooSmall) as exc:
        embed_table(t, secret, "alice")
    e = exc.value
    assert e.kind == "invalid" and e.rows == 40 and e.needed_rows > 40
    assert f"{e.needed_rows - 40} more" in str(e)


def test_canary_rows_trace_a_small_table(secret: bytes) -> None:
    t = sample_table(40, seed=3)
    out, rep = embed_table(t, secret, "alice", Params(canaries=3))
    assert out.num_rows == 43 and rep.canary_rows == 3 and len(rep.canary_keys) == 3
    real_ids = set(t.column("id").to_pylist())
    assert not set(out.column("id").to_pylist()[40:]) & real_ids
    copies = registered(secret, rep.plan, ["bob"])
    from dataclasses import replace

    copies.append(replace(registered(secret, rep.plan, ["alice"])[0],
                          canary_keys=rep.canary_keys))
    v = detect_table(out.take(pa.array([41, 5, 7, 40])), secret, copies)
    assert v.verdict == "match" and v.recipient == "alice"
    assert v.evidence["canary_rows"] == 2
    assert detect_table(t, secret, copies).verdict == "none"


@pytest.mark.parametrize("params,message", [
    ({"gamma": 0}, "gamma"), ({"code_bits": 32}, "code_bits"), ({"alpha": 0}, "alpha"),
])
def test_bad_params(params: dict[str, Any], message: str) -> None:
    with pytest.raises(WatermarkError, match=message):
        Params(**params)


def test_nothing_markable(secret: bytes) -> None:
    t = pa.table({"id": [str(i) for i in range(500)], "age": [str(20 + i % 50) for i in range(500)]})
    with pytest.raises(NoMarkableColumns):
        embed_table(t, secret, "alice")
    with pytest.raises(WatermarkError, match="not in the table"):
        embed_table(t, secret, "alice", Params(columns=("nope",)))
