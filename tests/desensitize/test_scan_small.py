"""The row-wise path for small batches (one record sent to the masking API) gives the
same report as the Arrow path, and its patterns mean what the RE2 kernels mean."""

from __future__ import annotations

import random
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from faker import Faker

from desensitize import TableScanner
from desensitize.table_scan import (
    _KEY_SHAPE,
    _NOT_KEY,
    _QI_CHECKS,
    _TEXT_HINT,
    kernels,
    row_pattern,
)
from desensitize.text_scan import TextScanner
from tests.desensitize.data import pii_gen as gen

# values where RE2 and Python's defaults part ways: Unicode digits, \v, a final newline
AWKWARD = ["13812345678\n", "1381234567８", "١٣٨١٢٣٤٥٦٧٨", "a\x0bb", "张\n三", "张三\n", "男\n",
           "12\n", "2024-01-02\n", "ＡＢ12345678", "𠀀𠀁", "ABCDEFGH12", "1.5", "2020-1-1",
           " 张三 ", "\u3000李四\u3000", "", None, "北京市朝阳区建国路88号", "user@example.com\n",
           "192.168.0.1", "::1", "٣٥", "1٢.5", "京A12345", "E12345678", "110101199003074578", "男", "35岁"]


def _corpus(seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    makers: list[Callable[[], str]] = [lambda: gen.person(rng, fake), lambda: gen.resident_id(rng), lambda: gen.mobile(rng),
              lambda: gen.address(rng), lambda: gen.bank_card(rng), lambda: gen.plate(rng),
              lambda: gen.email(rng, fake), lambda: gen.uscc(rng), lambda: gen.passport(rng),
              lambda: gen.ip(rng, fake), lambda: str(rng.randrange(10**9))]
    return [m() for m in makers for _ in range(40)] + [v for v in AWKWARD if v is not None]


def test_every_pattern_matches_what_the_arrow_kernel_matches() -> None:
    values = _corpus()
    arr = pa.array(values, pa.string())
    patterns = [p for k in kernels() for p in (k.pattern, k.ascii_pattern)]
    patterns += [*_QI_CHECKS.values(), _TEXT_HINT, _KEY_SHAPE, _NOT_KEY]
    for pattern in patterns:
        arrow = pc.match_substring_regex(arr, pattern).to_pylist()
        rows = [bool(row_pattern(pattern).search(v)) for v in values]
        diff = [v for v, a, r in zip(values, arrow, rows, strict=True) if a != r]
        assert not diff, (pattern, diff)


def _table(rng: random.Random, fake: Faker, n: int) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({
        "姓名": [gen.person(rng, fake) for _ in range(n)],
        "SFZH": [gen.resident_id(rng) for _ in range(n)],
        "联系电话": [gen.mobile(rng) for _ in range(n)],
        "JTZZ": [gen.address(rng) for _ in range(n)],
        "性别": [rng.choice(["男", "女", None]) for _ in range(n)],
        "年龄": [str(rng.randrange(18, 80)) for _ in range(n)],
        "编号": [f"M{rng.randrange(10**9):09d}" for _ in range(n)],
        "odd": [rng.choice(AWKWARD) for _ in range(n)],
        "备注": [rng.choice(["无", "张三说他的电话是13812345678", None]) for _ in range(n)],
    })


@pytest.mark.parametrize("n", [1, 2, 5, 17, 64])
def test_small_batches_give_the_arrow_paths_report(n: int) -> None:
    rng = random.Random(n)
    fake = Faker("zh_CN")
    fake.seed_instance(n)
    text = TextScanner()
    batches = [_table(rng, fake, n), _table(rng, fake, n)]
    rows = TableScanner(text_scanner=text, small_rows=64).scan(batches)
    arrow = TableScanner(text_scanner=text, small_rows=0).scan(batches)
    assert rows.to_dict() == arrow.to_dict()
