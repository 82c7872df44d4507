"""Embedding: mark a stream of Arrow record batches for one recipient."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watermark.canary import make_canaries
from watermark.codes import bits_needed
from watermark.columns import plan_columns
from watermark.errors import TableTooSmall
from watermark.hashing import (
    codeword,
    codeword_hex,
    column_salt,
    key_fingerprint,
    mix,
    row_hashes,
    virtual_keys,
)
from watermark.masked import embed_masked
from watermark.models import ColumnReport, EmbedReport, Params, Plan
from watermark.numeric import as_string, column_sum, embed_numeric


def needed_marks(params: Params) -> int:
    """Marks a copy must carry so that, leaked whole, it can be traced at ``alpha``."""
    need = bits_needed(params.max_recipients, params.alpha)
    bits = params.code_bits
    if need >= bits:
        return 10 * bits
    # Expected distinct bits of m marks over L bits: L (1 - exp(-m / L)).
    return math.ceil(-bits * math.log(1 - need / bits) * 1.25)


class Embedder:
    """Marks batches for one recipient; call :meth:`report` at the end.

    The plan (key, marked columns) is fixed by the first batch. ``report`` raises
    ``TableTooSmall`` when the whole table carried too few marks (and no canaries).
    """

    def __init__(self, secret: bytes, recipient: str, params: Params | None = None,
                 *, plan: Plan | None = None) -> None:
        self.secret = secret
        self.recipient = recipient
        self.params = params or Params()
        self.plan = plan
        self.code = codeword(secret, recipient, self.params.code_bits)
        self.rows = 0
        self._stats: dict[str, dict[str, float]] = {}
        self._carry: dict[str, float] = {}
        self._canary_keys: tuple[str, ...] = ()
        self._canary_rows = 0
        self._sample: pa.RecordBatch | None = None
        self._formats_kept = True

    def _keys(self, batch: pa.RecordBatch, plan: Plan) -> np.ndarray:
        keys = virtual_keys([as_string(batch.column(k)) for k in plan.key_columns])
        return row_hashes(keys, self.secret)

    def mark(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Return the marked batch (same schema, same row order)."""
        if self.plan is None:
            self.plan = plan_columns(batch, self.params)
        plan = self.plan
        if self._sample is None and batch.num_rows:
            self._sample = batch.slice(0, min(batch.num_rows, 1000))
        self.rows += batch.num_rows
        if batch.num_rows == 0:
            return batch
        h = self._keys(batch, plan)
        arrays = []
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            if name in plan.numeric_columns:
                arrays.append(self._numeric(name, col, h, plan))
            elif name in plan.masked_columns:
                arrays.append(self._masked(name, col, h, plan))
            else:
                arrays.append(col)
        return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)

    def _stat(self, name: str) -> dict[str, float]:
        return self._stats.setdefault(name, {"values": 0, "marked": 0, "changed": 0,
                                             "sum": 0.0, "shift": 0.0, "unflippable": 0})

    def _numeric(self, name: str, col: pa.Array, h: np.ndarray, plan: Plan) -> pa.Array:
        s = as_string(col)
        sel = mix(h, column_salt(self.secret, name))
        res = embed_numeric(s, sel, self.code, gamma=plan.gamma, min_digits=plan.min_digits,
                            carry=self._carry.get(name, 0.0))
        self._carry[name] = res.residual
        count, total = column_sum(s)
        st = self._stat(name)
        st["values"] += count
        st["sum"] += total
        st["marked"] += res.marked
        st["changed"] += res.changed
        st["shift"] += res.shift
        out = res.array
        self._check_format(s, out, dots=True)
        return out if col.type == pa.string() else pc.cast(out, col.type)

    def _check_format(self, before: pa.Array, after: pa.Array, *, dots: bool) -> None:
        # Measured, not assumed: every value keeps its length (and decimal point).
        if before is after or not self._formats_kept:
            return
        same = pc.equal(pc.utf8_length(before), pc.utf8_length(after))
        if dots:
            same = pc.and_(same, pc.equal(pc.find_substring(before, "."),
                                          pc.find_substring(after, ".")))
        if pc.sum(pc.invert(pc.fill_null(same, True))).as_py():
            self._formats_kept = False

    def _masked(self, name: str, col: pa.Array, h: np.ndarray, plan: Plan) -> pa.Array:
        s = as_string(col)
        sel = mix(h, column_salt(self.secret, name))
        res = embed_masked(s, sel, self.code, gamma=plan.gamma)
        self._check_format(s, res.array, dots=False)
        st = self._stat(name)
        st["values"] += len(s) - s.null_count
        st["marked"] += res.marked
        st["changed"] += res.changed
        st["unflippable"] += res.unflippable
        return res.array if col.type == pa.string() else pc.cast(res.array, col.type)

    def canaries(self) -> pa.RecordBatch | None:
        """Per-recipient fake rows to append after the last batch (``params.canaries``)."""
        if not self.params.canaries or self._sample is None or self.plan is None:
            return None
        batch = make_canaries(self._sample, self.plan, self.secret, self.recipient,
                              self.params.canaries)
        self._canary_keys = tuple(f"{int(v):016x}" for v in self._keys(batch, self.plan))
        self._canary_rows = batch.num_rows
        return batch

    def report(self) -> EmbedReport:
        """Counts and distortion; raises ``TableTooSmall`` if the mark is undetectable."""
        plan = self.plan
        if plan is None:
            plan = Plan("virtual", (), (), (), self.params.gamma, self.params.code_bits,
                        self.params.min_digits)
        cols = []
        for name in plan.marked_columns:
            st = self._stat(name)
            kind = "numeric" if name in plan.numeric_columns else "masked"
            mean_before = mean_after = rel = None
            if kind == "numeric" and st["values"]:
                mean_before = st["sum"] / st["values"]
                mean_after = (st["sum"] + st["shift"]) / st["values"]
                rel = abs(st["shift"] / st["sum"]) if st["sum"] else 0.0
            cols.append(ColumnReport(name, kind, int(st["values"]), int(st["marked"]),
                                     int(st["changed"]), mean_before, mean_after, rel,
                                     int(st["unflippable"])))
        marked = sum(c.marked for c in cols)
        need = needed_marks(self.params)
        if marked < need and not self._canary_rows:
            per_row = marked / self.rows if self.rows and marked else \
                max(len(plan.marked_columns), 1) / plan.gamma
            raise TableTooSmall(rows=self.rows, expected_marks=marked, needed_marks=need,
                                needed_rows=math.ceil(need / per_row))
        return EmbedReport(
            recipient=self.recipient, rows=self.rows, marked_cells=marked,
            changed_cells=sum(c.changed for c in cols), canary_rows=self._canary_rows,
            columns=tuple(cols), plan=plan, codeword=codeword_hex(self.code),
            key_fingerprint=key_fingerprint(self.secret), canary_keys=self._canary_keys,
            formats_kept=self._formats_kept)


def embed_batches(batches: Iterable[pa.RecordBatch], secret: bytes, recipient: str,
                  params: Params | None = None) -> tuple[Iterator[pa.RecordBatch], Embedder]:
    """Lazily mark a stream; the embedder's ``report()`` is valid once it is consumed."""
    emb = Embedder(secret, recipient, params)

    def gen() -> Iterator[pa.RecordBatch]:
        for b in batches:
            yield emb.mark(b)
        extra = emb.canaries()
        if extra is not None:
            yield extra

    return gen(), emb


def embed_table(table: pa.Table, secret: bytes, recipient: str,
                params: Params | None = None) -> tuple[pa.Table, EmbedReport]:
    """Mark an in-memory table; returns the marked table and the report."""
    stream, emb = embed_batches(table.to_batches(max_chunksize=65536), secret, recipient,
                                params)
    out = list(stream)
    marked = pa.Table.from_batches(out, schema=table.schema) if out else table
    return marked, emb.report()
