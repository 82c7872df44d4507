"""A column named as pseudonyms holds text nobody here wrote: short digit strings,
full-width digits, stray letters among the ID or card numbers. Choosing its form must
answer (a form, or a refusal that names the column), never crash."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from tests.watermark.conftest import SECRET
from watermark import Params, WatermarkError, embed_table
from watermark.pseudonym import _check_char, pseudonym_form


def _ids(n: int, seed: int = 3) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        body = "".join(rnd.choice("0123456789") for _ in range(17))
        out.append(body + _check_char(body, "id18"))
    return out


@pytest.mark.parametrize("odd", ["12345", "１２３４５６７８９０１２３４５６７８", "9", "1234567890123456789012",
                                 "12345678901234567X\n"])
def test_odd_values_among_id_numbers_leave_the_form_id18(odd: str) -> None:
    values = [*_ids(200), odd]
    assert pseudonym_form(pa.array(values), explicit=True) == "id18"


def test_odd_values_in_a_named_column_are_marked_around_not_crashed_on() -> None:
    ids = _ids(3000)
    ids[7], ids[11] = "12345", "１２３４５６７８９０１２３４５６７８"
    table = pa.table({"id": [f"r{i}" for i in range(len(ids))], "证件号": ids})
    marked, report = embed_table(table, SECRET, "consumer-1", Params(pseudonyms=("证件号",)))
    col = marked.column("证件号").to_pylist()
    assert col[7] == "12345" and col[11] == "１２３４５６７８９０１２３４５６７８"
    assert report.plan is not None and any(c.kind == "pseudonym" for c in report.plan.carriers)


def test_a_named_column_of_mostly_short_digit_runs_is_refused_by_name() -> None:
    values = [str(1000 + i) for i in range(3000)]
    table = pa.table({"id": [f"r{i}" for i in range(len(values))], "code": values})
    with pytest.raises(WatermarkError, match="code"):
        embed_table(table, SECRET, "consumer-1", Params(pseudonyms=("code",)))
