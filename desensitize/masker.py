"""The streaming masking engine: Arrow record batches in, record batches out.

Invariants (tested): the output has the input's rows in the input's order, the
input's columns in the input's order minus the ``suppress`` ed ones, and every
cell of a column the plan keeps is byte-for-byte the input cell.  Memory is
bounded by one batch (plus the operators' per-key caches).

Free-text columns (plan op ``spans``) are masked span by span: a ``SpanFinder``
(the text scanner, injected) returns ``(start, end, entity)`` findings per text;
each span is replaced by the profile's rule for its entity and the text around it
is left as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from desensitize.keys import Keyring
from desensitize.operators import OpContext, apply_operator, get_operator
from desensitize.plan import SPANS, MaskPlan

Span = tuple[int, int, str]
SpanFinder = Callable[[Sequence[str]], Sequence[Sequence[Span]]]


@dataclass
class MaskStats:
    """Counters of one masking run (no values)."""

    rows: int = 0
    cells: int = 0
    spans: int = 0
    per_column: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "cells_masked": self.cells, "spans_masked": self.spans,
                "per_column": dict(self.per_column)}


def _non_overlapping(spans: Iterable[Span]) -> list[Span]:
    """Earliest first, longer first on ties; later overlapping spans are dropped."""
    out: list[Span] = []
    end = -1
    for s in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        if s[0] >= end and s[1] > s[0]:
            out.append(s)
            end = s[1]
    return out


class Masker:
    """Applies a :class:`MaskPlan` to record batches."""

    def __init__(
        self,
        plan: MaskPlan,
        *,
        keyring: Keyring | None = None,
        span_finder: SpanFinder | None = None,
    ) -> None:
        self.plan = plan
        self.keyring = keyring
        self.span_finder = span_finder
        self.stats = MaskStats()
        if any(c.op == SPANS for c in plan.columns) and span_finder is None:
            from desensitize.errors import PlanError

            raise PlanError("the plan masks free text but no text scanner was given")
        for c in plan.columns:
            if c.op != SPANS:
                get_operator(c.op).normalize(c.params)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        fields = []
        for f in schema:
            c = self.plan.get(f.name)
            if c.op == "suppress":
                continue
            fields.append(f if not c.touches else pa.field(f.name, pa.string()))
        return pa.schema(fields)

    def _ctx(self, column: str, entity: str | None) -> OpContext:
        return OpContext(self.keyring, entity, column)

    def _known_values(self, batch: pa.RecordBatch) -> list[tuple[str, list[str | None]]]:
        """(entity, values) of the batch's PII columns, to catch them inside free text."""
        known = []
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            c = self.plan.get(name)
            if c.entity is not None and c.touches and c.op != SPANS:
                if not pa.types.is_string(col.type):
                    col = pc.cast(col, pa.string())
                known.append((c.entity, col.to_pylist()))
        return known

    def mask_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays, names = [], []
        known = self._known_values(batch) if any(c.op == SPANS for c in self.plan.columns) else []
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            c = self.plan.get(name)
            if c.op == "suppress":
                continue
            if c.touches:
                before = col
                if c.op == SPANS:
                    col = self._spans(name, col, known)
                else:
                    col = apply_operator(c.op, col, c.params, self._ctx(name, c.entity))
                changed = _count_changed(before, col)
                self.stats.cells += changed
                self.stats.per_column[name] = self.stats.per_column.get(name, 0) + changed
            arrays.append(col)
            names.append(name)
        self.stats.rows += batch.num_rows
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def mask_stream(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield self.mask_batch(batch)

    def _spans(
        self, name: str, col: pa.Array, known: list[tuple[str, list[str | None]]]
    ) -> pa.Array:
        assert self.span_finder is not None
        if not pa.types.is_string(col.type):
            col = pc.cast(col, pa.string())
        texts = col.to_pylist()
        rows = [i for i, t in enumerate(texts) if t]
        if not rows:
            return col
        # identical texts (templated remarks, repeated addresses) are scanned once
        distinct: dict[str, int] = {}
        for i in rows:
            distinct.setdefault(texts[i], len(distinct))
        scanned = self.span_finder(list(distinct))
        found = [scanned[distinct[texts[i]]] for i in rows]
        # group spans by entity so each operator runs once, vectorised
        per_entity: dict[str, list[tuple[int, int, int]]] = {}
        kept: dict[int, list[Span]] = {}
        for row, spans in zip(rows, found, strict=True):
            # the row's own PII values found verbatim in its text are masked too, so
            # a value the text scanner misses does not leak through the free text
            extra = []
            text = texts[row]
            for entity, values in known:
                value = values[row]
                if value and len(value) >= 2:
                    at = text.find(value)
                    while at >= 0:
                        extra.append((at, at + len(value), entity))
                        at = text.find(value, at + len(value))
            ok = _non_overlapping([*spans, *extra])
            if ok:
                kept[row] = ok
                for s in ok:
                    per_entity.setdefault(s[2], []).append((row, s[0], s[1]))
        replacement: dict[tuple[int, int], str] = {}
        for entity, items in per_entity.items():
            rule = self.plan.span_rule(entity)
            op = "redact" if rule.op == "suppress" else rule.op
            values = pa.array([texts[r][a:b] for r, a, b in items], pa.string())
            masked = apply_operator(op, values, rule.params, self._ctx(name, entity)).to_pylist()
            for (r, a, _b), m in zip(items, masked, strict=True):
                replacement[(r, a)] = m or ""
        self.stats.spans += sum(len(v) for v in kept.values())
        for row, spans in kept.items():
            text = texts[row]
            parts, pos = [], 0
            for a, b, _e in spans:
                parts.append(text[pos:a])
                parts.append(replacement[(row, a)])
                pos = b
            parts.append(text[pos:])
            texts[row] = "".join(parts)
        return pa.array(texts, pa.string())


def _count_changed(before: pa.Array, after: pa.Array) -> int:
    if not pa.types.is_string(before.type):
        before = pc.cast(before, pa.string())
    if len(before) <= 64:
        return sum(1 for a, b in zip(before.to_pylist(), after.to_pylist(), strict=True)
                   if a is not None and b is not None and a != b)
    diff = pc.fill_null(pc.not_equal(before, after), False)
    return int(pc.sum(diff).as_py() or 0)


def mask_table(
    table: pa.Table,
    plan: MaskPlan,
    *,
    keyring: Keyring | None = None,
    span_finder: SpanFinder | None = None,
) -> tuple[pa.Table, MaskStats]:
    """Mask an in-memory table (small inputs, the HTTP API)."""
    masker = Masker(plan, keyring=keyring, span_finder=span_finder)
    batches = [masker.mask_batch(b) for b in table.to_batches()]
    if not batches:
        return masker.output_schema(table.schema).empty_table(), masker.stats
    return pa.Table.from_batches(batches), masker.stats
