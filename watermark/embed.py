"""Embedding: mark a stream of Arrow record batches for one recipient."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watermark.canary import make_canaries
from watermark.category import embed_category
from watermark.codes import bits_needed
from watermark.columns import plan_columns
from watermark.dates import embed_dates
from watermark.errors import TableTooSmall, WatermarkError
from watermark.hashing import (
    codeword,
    codeword_hex,
    column_salt,
    key_fingerprint,
    row_hashes,
    subkey,
    virtual_keys,
)
from watermark.identity import identity_hashes
from watermark.levels import embed_levels
from watermark.masked import embed_patterns
from watermark.models import Carrier, ColumnReport, EmbedReport, Params, Plan
from watermark.numeric import as_string, column_sum
from watermark.positions import Positions, periods, positions
from watermark.pseudonym import embed_pseudonyms


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

    The plan (row identities, carriers) is fixed by the first batch. ``report`` raises
    ``TableTooSmall`` when the whole table carried too few marks (and no canaries).
    """

    def __init__(self, secret: bytes, recipient: str, params: Params | None = None,
                 *, plan: Plan | None = None) -> None:
        if plan is not None and plan.version < 2:
            raise WatermarkError("version-1 plans can still be detected but no longer embedded")
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
        if batch.num_rows == 0 or not plan.carriers:
            return batch
        forms: dict[tuple[str, str], pa.Array] = {}
        hashes: list[np.ndarray | None] = [
            identity_hashes([as_string(batch.column(c)) for c in s.columns], s, self.secret,
                            cache=forms)
            for s in plan.sources]
        by_name = {c.name: c for c in plan.carriers}
        every = periods([x.role for x in plan.sources], plan.gamma)
        arrays = []
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            carrier = by_name.get(name)
            if carrier is None:
                arrays.append(col)
                continue
            s = as_string(col)
            if carrier.kind in ("pattern", "pseudonym"):
                # Found by the value itself, not by the row.
                out = self._value_mark(carrier, s, plan)
                self._check_format(s, out, dots=False)
                arrays.append(out if col.type == pa.string() else pc.cast(out, col.type))
                continue
            pos = positions(hashes, column_salt(self.secret, name), periods=every,
                            code_bits=plan.code_bits,
                            levels=len(carrier.levels), version=plan.version)
            out = self._carry_mark(carrier, s, pos, plan)
            self._check_format(s, out, dots=carrier.kind == "numeric")
            arrays.append(out if col.type == pa.string() else pc.cast(out, col.type))
        return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)

    def _stat(self, name: str) -> dict[str, float]:
        return self._stats.setdefault(name, {"values": 0, "marked": 0, "changed": 0,
                                             "sum": 0.0, "shift": 0.0, "unflippable": 0})

    def _carry_mark(self, carrier: Carrier, s: pa.Array, pos: Positions, plan: Plan) -> pa.Array:
        st = self._stat(carrier.name)
        st["values"] += len(s) - s.null_count
        if carrier.kind == "numeric":
            res = embed_levels(s, pos, self.code, carrier.levels, rel=plan.max_rel_error,
                               bucket=carrier.bucket, carry=self._carry.get(carrier.name, 0.0))
            self._carry[carrier.name] = res.residual
            count, total = column_sum(s)
            st["values"] += count - (len(s) - s.null_count)
            st["sum"] += total
            st["marked"] += res.marked
            st["changed"] += res.changed
            st["shift"] += res.shift
            return res.array
        if carrier.kind in ("date", "category"):
            out, marked, changed = (embed_dates(s, pos, self.code) if carrier.kind == "date"
                                    else embed_category(s, pos, self.code, carrier.variants))
            st["marked"] += marked
            st["changed"] += changed
            return out
        raise WatermarkError(f"carrier kind {carrier.kind!r} is read only (copies of "
                             "earlier releases); it is no longer embedded")

    def _value_mark(self, carrier: Carrier, s: pa.Array, plan: Plan) -> pa.Array:
        st = self._stat(carrier.name)
        st["values"] += len(s) - s.null_count
        salt = column_salt(self.secret, carrier.name)
        if carrier.kind == "pattern":
            out, marked, changed = embed_patterns(
                s, carrier.patterns, self.code, self.secret, salt, gamma=plan.gamma,
                coin_key=subkey(self.secret, f"mask-coin\x1f{self.recipient}"))
        else:
            out, marked, changed = embed_pseudonyms(s, carrier.form, self.code, self.secret,
                                                    salt, gamma=plan.gamma)
        st["marked"] += marked
        st["changed"] += changed
        return out

    def _check_format(self, before: pa.Array, after: pa.Array, *, dots: bool) -> None:
        # Measured, not assumed: every value keeps its decimals (numbers) or its length.
        if before is after or not self._formats_kept:
            return
        if dots:
            def decimals(a: pa.Array) -> pa.Array:
                dot = pc.find_substring(a, ".")
                return pc.if_else(pc.less(dot, 0), 0,
                                  pc.subtract(pc.subtract(pc.utf8_length(a), dot), 1))
            same = pc.equal(decimals(before), decimals(after))
        else:
            same = pc.equal(pc.utf8_length(before), pc.utf8_length(after))
        if pc.sum(pc.invert(pc.fill_null(same, True))).as_py():
            self._formats_kept = False

    def canaries(self) -> pa.RecordBatch | None:
        """Per-recipient fake rows to append after the last batch (``params.canaries``)."""
        if not self.params.canaries or self._sample is None or self.plan is None:
            return None
        if not self.plan.key_columns:
            raise WatermarkError("canary rows need a column that is not marked to key them by; "
                                 "every column of this table carries marks and it is too small "
                                 "for them to be detected")
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
                        self.params.min_digits, version=3,
                        max_rel_error=self.params.max_rel_error)
        cols = []
        for carrier in plan.carriers:
            name = carrier.name
            st = self._stat(name)
            mean_before = mean_after = rel = None
            if carrier.kind == "numeric" and st["values"]:
                mean_before = st["sum"] / st["values"]
                mean_after = (st["sum"] + st["shift"]) / st["values"]
                rel = abs(st["shift"] / st["sum"]) if st["sum"] else 0.0
            cols.append(ColumnReport(name, carrier.kind, int(st["values"]), int(st["marked"]),
                                     int(st["changed"]), mean_before, mean_after, rel,
                                     int(st["unflippable"])))
        for c in cols:
            if c.relative_shift is not None and c.relative_shift > self.params.max_drift:
                raise WatermarkError(
                    f"column {c.name!r}: the marks would move its sum and mean by "
                    f"{c.relative_shift:.4%}, over the usability bound of "
                    f"{self.params.max_drift:.4%} (max_drift of the watermark policy); "
                    "mark a larger table or leave the column out")
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
