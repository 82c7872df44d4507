"""The Spark scan kernel without Spark: a partition is skipped only when it is empty."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

import pyarrow as pa
import pytest

from desensitize.errors import ScanInputError
from quanguard.spark import kernels


def _run(batches: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    fn = kernels.scan_partition(csv=False, distinct_cap=100, kanon_cap=100, text_values=10)
    return list(fn(iter(batches)))


def test_an_empty_partition_contributes_nothing() -> None:
    assert _run([]) == []


def test_a_partition_with_rows_is_scanned_into_one_state_row() -> None:
    out = _run([pa.record_batch({"姓名": ["张三", "李四"]})])
    assert len(out) == 1 and out[0].num_rows == 1


def test_a_refused_partition_with_rows_fails_the_job_instead_of_vanishing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: any ScanInputError dropped the partition, so its rows (and their personal
    data) were left out of the column classification without a word."""

    def refuse(self: object, batches: Iterable[pa.RecordBatch], **kw: object) -> NoReturn:
        for _ in batches:
            pass
        raise ScanInputError("input looks binary")

    monkeypatch.setattr(kernels._CapturingScanner, "scan", refuse)
    with pytest.raises(ScanInputError):
        _run([pa.record_batch({"姓名": ["张三"]})])
    assert _run([]) == []  # an empty partition still contributes nothing
