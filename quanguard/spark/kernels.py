"""What runs inside Spark's Python workers: the domain kernels, one partition at a time.

Every function here is handed to ``DataFrame.mapInArrow`` and receives the partition as
an iterator of Arrow record batches.  They call the very same code as the single-process
path — :class:`desensitize.TableScanner`, :class:`desensitize.Masker`,
:class:`watermark.Embedder` — so a cell masked on Spark is byte-for-byte the cell masked
by ``quanguard mask`` with the same keys and plan.

Per-partition counters go back to the driver through an accumulator (mask, watermark)
or as one pickled state row per partition (scan), and are merged there.  This module
imports pyarrow and the domain packages only; no pyspark, no service.
"""

from __future__ import annotations

import pickle
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from desensitize.classify import DatasetReport
from desensitize.errors import ScanInputError
from desensitize.keys import Keyring
from desensitize.masker import Masker, SpanFinder
from desensitize.plan import MaskPlan
from desensitize.table_scan import TableScanner, _Column

if TYPE_CHECKING:
    from watermark import Params
    from watermark.models import Plan

__all__ = [
    "ScanPartial",
    "mask_partition",
    "merge_scan_partials",
    "normalize",
    "scan_partition",
    "watermark_partition",
]

STATE_COLUMN = "state"


def normalize(batch: pa.RecordBatch, *, csv: bool) -> pa.RecordBatch:
    """Make a Spark batch look like the single-process reader's batch.

    Spark may hand out ``large_string`` columns; the kernels speak ``string``.  Spark's
    CSV reader turns empty fields into nulls while ``desensitize.tableio`` keeps them as
    ``""``; for CSV input the nulls become ``""`` again, so masked values match.
    """
    arrays = []
    changed = False
    for col in batch.columns:
        if pa.types.is_large_string(col.type):
            col = pc.cast(col, pa.string())
            changed = True
        if csv and pa.types.is_string(col.type) and col.null_count:
            col = pc.fill_null(col, "")
            changed = True
        arrays.append(col)
    if not changed:
        return batch
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


# -- scan -----------------------------------------------------------------------------------

@dataclass
class ScanPartial:
    """The scanner's counters over some rows, mergeable with other partitions'."""

    columns: list[_Column]
    qi_kinds: list[str | None]
    kanon: Counter[tuple[object, ...]] = field(default_factory=Counter)
    kanon_overflow: bool = False
    rows: int = 0


class _CapturingScanner(TableScanner):
    """A TableScanner that keeps its counters instead of classifying (per partition)."""

    captured: ScanPartial | None = None

    def _report(self, cols: list[_Column], qi_kinds: list[str | None],
                kanon: Counter[tuple[object, ...]], overflow: bool, rows: int,
                sampled: bool) -> DatasetReport:
        self.captured = ScanPartial(cols, qi_kinds, kanon, overflow, rows)
        return DatasetReport(columns=(), rows_scanned=rows, sampled=sampled)


def scan_partition(*, csv: bool, distinct_cap: int, kanon_cap: int, text_values: int
                   ) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The mapInArrow function of a scan: one row (the pickled :class:`ScanPartial`) out."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        scanner = _CapturingScanner(distinct_cap=distinct_cap, kanon_cap=kanon_cap,
                                    text_values=text_values)
        rows = 0

        def counted() -> Iterator[pa.RecordBatch]:
            nonlocal rows
            for b in batches:
                rows += b.num_rows
                yield normalize(b, csv=csv)

        try:
            scanner.scan(counted(), sampled=False)
        except ScanInputError:
            if rows:  # a partition with rows the scanner refused: the job fails, never skips it
                raise
            return  # an empty partition contributes nothing
        yield pa.record_batch({STATE_COLUMN: pa.array([pickle.dumps(scanner.captured)],
                                                      pa.binary())})

    return run


def _merge_column(into: _Column, other: _Column, distinct_cap: int, text_values: int) -> None:
    into.non_empty += other.non_empty
    into.valid.update(other.valid)
    into.candidates.update(other.candidates)
    into.qi_ok += other.qi_ok
    into.total_len += other.total_len
    # the distinct ratio is "distinct values / values looked at" over every partition's head
    into.distinct.update(other.distinct)
    into.distinct_seen += other.distinct_seen
    if len(into.texts) < text_values:
        into.texts.extend(other.texts[: text_values - len(into.texts)])
    del distinct_cap  # each partition already capped what it kept


def merge_scan_partials(states: Iterable[bytes], *, distinct_cap: int, kanon_cap: int,
                        text_values: int) -> ScanPartial:
    """Merge the partitions' states (in partition order); ScanInputError when no rows."""
    merged: ScanPartial | None = None
    for blob in states:
        part: ScanPartial = pickle.loads(blob)
        if merged is None:
            merged = part
            continue
        if [c.name for c in part.columns] != [c.name for c in merged.columns]:
            raise ScanInputError("the partitions of the table disagree on its columns")
        for a, b in zip(merged.columns, part.columns, strict=True):
            _merge_column(a, b, distinct_cap, text_values)
        merged.rows += part.rows
        merged.kanon_overflow = merged.kanon_overflow or part.kanon_overflow
        if not merged.kanon_overflow:
            merged.kanon.update(part.kanon)
            if len(merged.kanon) > kanon_cap:
                merged.kanon_overflow = True
        if merged.kanon_overflow:
            merged.kanon.clear()
    if merged is None or merged.rows == 0:
        raise ScanInputError("the table has no rows")
    return merged


# -- mask -----------------------------------------------------------------------------------

_TEXT_SCANNER: list[SpanFinder] = []


def _span_finder() -> SpanFinder:
    """The text scanner of this worker process, built on first use (it takes seconds)."""
    from desensitize.pipeline import span_finder_for
    from desensitize.text_scan import TextScanner

    if not _TEXT_SCANNER:
        _TEXT_SCANNER.append(span_finder_for(TextScanner()))
    return _TEXT_SCANNER[0]


def mask_partition(plan: MaskPlan, keyring: Keyring | None, *, csv: bool, needs_spans: bool,
                   counters: Any, output_schema: pa.Schema
                   ) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The mapInArrow function of masking; adds ``rows``/``cells``/``spans`` to ``counters``."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        masker = Masker(plan, keyring=keyring, span_finder=_span_finder() if needs_spans else None)
        for batch in batches:
            masked = masker.mask_batch(normalize(batch, csv=csv))
            yield masked.cast(output_schema) if masked.schema != output_schema else masked
        counters.add({"rows": masker.stats.rows, "cells": masker.stats.cells,
                      "spans": masker.stats.spans, "per_column": dict(masker.stats.per_column)})

    return run


# -- watermark ------------------------------------------------------------------------------

def watermark_partition(secret: bytes, recipient: str, params: Params | None, plan: Plan, *, csv: bool,
                        counters: Any, output_schema: pa.Schema
                        ) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The mapInArrow function of marking, with the plan fixed on the driver."""
    from watermark import Embedder

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        emb = Embedder(secret, recipient, params, plan=plan)
        for batch in batches:
            marked = emb.mark(normalize(batch, csv=csv))
            yield marked.cast(output_schema) if marked.schema != output_schema else marked
        counters.add({"rows": emb.rows, "formats_kept": emb._formats_kept,
                      "stats": {k: dict(v) for k, v in emb._stats.items()}})

    return run
