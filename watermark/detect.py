"""Detection: recover the bits of a suspect table and test every issued codeword.

Steps (numbered in the methods): group the issued copies by plan; for every group find
the rows by every identity whose columns are still there (primary key, quasi-identifier
sets) and the marked cells by column name; vote each codeword bit per identity, carrier
and level; decide the bits per carrier and combined (:mod:`watermark.scoring`); compute
each recipient's exact binomial p-value on every statistic; correct for the statistics
tried and the recipients tested (Bonferroni); accuse below ``alpha`` or say "no
watermark found". Plans of earlier releases (version 1) are read the old way.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa

from watermark.category import read_category
from watermark.codes import Votes, bits_needed
from watermark.dates import read_dates
from watermark.errors import (
    KeyMismatch,
    MissingKeyColumns,
    NoCommonColumns,
    WatermarkError,
)
from watermark.hashing import (
    canonical_name,
    codeword_from_hex,
    column_salt,
    key_fingerprint,
    mix,
    row_hashes,
    virtual_keys,
)
from watermark.identity import identity_hashes
from watermark.levels import read_levels
from watermark.masked import read_masked, read_masked_at, read_patterns
from watermark.models import Candidate, IssuedCopy, Plan, Verdict, check_alpha
from watermark.numeric import as_string, read_numeric
from watermark.positions import periods, positions
from watermark.pseudonym import read_pseudonyms
from watermark.scoring import Statistic, agreements, statistics


class _Group:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.copies: list[IssuedCopy] = []
        self.votes: dict[str, Votes] = {}
        self.kinds: dict[str, str] = {}
        self.pools: dict[str, str] = {}
        self.columns: list[tuple[str, str, str]] = []  # (plan name, suspect name, kind)
        self.sources: list[list[str] | None] = []  # suspect columns of each source
        self.keys: list[str] = []
        self.usable = False
        self.canary_hits: dict[str, int] = {}
        self.canaries: dict[str, np.ndarray] = {}
        self.rows_used = 0
        self.source_rows: list[int] = []

    def vote(self, label: str, kind: str, index: np.ndarray, bit: np.ndarray) -> None:
        if label not in self.votes:
            self.votes[label] = Votes.empty(self.plan.code_bits)
            self.kinds[label] = kind
            self.pools[label] = f"{label.split('|', 1)[0]}|{kind}"
        self.votes[label].add(index, bit)


class Detector:
    """Accumulates evidence over batches of one suspect table."""

    def __init__(self, secret: bytes, copies: Sequence[IssuedCopy], *,
                 alpha: float = 1e-6) -> None:
        alpha = check_alpha(alpha)
        if not copies:
            raise WatermarkError("no issued copies to test the suspect against")
        fp = key_fingerprint(secret)
        for c in copies:
            if not _same(c.key_fingerprint, fp):
                raise KeyMismatch(c.key_fingerprint, fp)
        self.secret = secret
        self.alpha = alpha
        self.rows = 0
        self._groups: dict[Plan, _Group] = {}
        for c in copies:
            self._groups.setdefault(c.plan, _Group(c.plan)).copies.append(c)
        for g in self._groups.values():
            for c in g.copies:
                if c.canary_keys:
                    g.canaries[c.recipient] = np.array(
                        [int(k, 16) for k in c.canary_keys], dtype=np.uint64)
        self._bound = False

    def _bind(self, names: list[str]) -> None:
        # 1. Match suspect columns to each plan by canonical name.
        lookup = {canonical_name(n): n for n in names}

        def present(cols: Sequence[str]) -> list[str] | None:
            found = [lookup.get(canonical_name(c)) for c in cols]
            return None if any(f is None for f in found) else [str(f) for f in found]

        marked_all: set[str] = set()
        missing: set[str] = set()
        for g in self._groups.values():
            plan = g.plan
            kinds = ([(c.name, c.kind) for c in plan.carriers] if plan.version >= 2 else
                     [(c, "numeric") for c in plan.numeric_columns]
                     + [(c, "masked") for c in plan.masked_columns])
            for col, kind in kinds:
                if canonical_name(col) in lookup:
                    g.columns.append((col, lookup[canonical_name(col)], kind))
            marked_all.update(plan.marked_columns)
            keys = present(plan.key_columns)
            g.keys = keys or []
            if plan.version >= 2:
                g.sources = [present(s.columns) for s in plan.sources]
                g.source_rows = [0] * len(plan.sources)
                # Masked values and pseudonyms are found by their own values.
                located = any(s is not None for s in g.sources) or any(
                    kind in ("pattern", "pseudonym") for _, _, kind in g.columns)
                for s in plan.sources:
                    missing.update(c for c in s.columns if canonical_name(c) not in lookup)
            else:
                located = keys is not None
                if keys is None:
                    missing.update(k for k in plan.key_columns if canonical_name(k) not in lookup)
            g.usable = (located and bool(g.columns)) or (keys is not None and bool(g.canaries))
        if not any(g.columns for g in self._groups.values()) and \
                not any(g.canaries for g in self._groups.values()):
            raise NoCommonColumns(tuple(names), tuple(sorted(marked_all)))
        if not any(g.usable for g in self._groups.values()):
            raise MissingKeyColumns(tuple(sorted(missing)))
        self._bound = True

    def feed(self, batch: pa.RecordBatch) -> None:
        """Read one batch of the suspect table."""
        if not self._bound:
            self._bind(list(batch.schema.names))
        self.rows += batch.num_rows
        if batch.num_rows == 0:
            return
        cache: dict[tuple[object, ...], np.ndarray] = {}
        self._forms: dict[tuple[str, str], pa.Array] = {}
        for g in self._groups.values():
            if not g.usable:
                continue
            if g.plan.version >= 2:
                self._feed_v2(g, batch, cache)
            elif g.keys:
                self._feed_v1(g, batch, cache)
            if g.canaries and g.keys:
                kt = ("key", *g.keys)
                if kt not in cache:
                    keys = virtual_keys([as_string(batch.column(k)) for k in g.keys])
                    cache[kt] = row_hashes(keys, self.secret)
                for rec, canary in g.canaries.items():
                    hits = int(np.isin(cache[kt], canary).sum())
                    if hits:
                        g.canary_hits[rec] = g.canary_hits.get(rec, 0) + hits

    def _feed_v2(self, g: _Group, batch: pa.RecordBatch,
                 cache: dict[tuple[object, ...], np.ndarray]) -> None:
        plan = g.plan
        hashes: list[np.ndarray | None] = []
        for k, (src, cols) in enumerate(zip(plan.sources, g.sources, strict=True)):
            if cols is None:
                hashes.append(None)
                continue
            ck = ("src", src, *cols)
            if ck not in cache:
                cache[ck] = identity_hashes([as_string(batch.column(c)) for c in cols], src,
                                            self.secret, cache=self._forms)
            hashes.append(cache[ck])
        carriers = {c.name: c for c in plan.carriers}
        every = periods([x.role for x in plan.sources], plan.gamma)
        used = np.zeros(batch.num_rows, dtype=bool)
        per_source = np.zeros((len(plan.sources), batch.num_rows), dtype=bool)
        for plan_name, name, kind in g.columns:
            carrier = carriers[plan_name]
            if kind in ("pattern", "pseudonym"):
                col = as_string(batch.column(name))
                salt = column_salt(self.secret, plan_name)
                rows, idx, bit = (
                    read_patterns(col, carrier.patterns, self.secret, salt, gamma=plan.gamma,
                                  code_bits=plan.code_bits) if kind == "pattern" else
                    read_pseudonyms(col, carrier.form, self.secret, salt, gamma=plan.gamma,
                                    code_bits=plan.code_bits))
                g.vote(f"v|{plan_name}", kind, idx, bit)
                used[rows] = True
                continue
            pos = positions(hashes, column_salt(self.secret, plan_name), periods=every,
                            code_bits=plan.code_bits,
                            levels=len(carrier.levels), version=plan.version)
            col = as_string(batch.column(name))
            src_of_row = np.full(batch.num_rows, -1, dtype=np.int64)
            src_of_row[pos.rows] = pos.source
            if kind == "numeric":
                rows, exps, idx, bit = read_levels(col, pos, carrier.levels,
                                                   rel=plan.max_rel_error)
                labels = [(f"s{s}|{plan_name}|{e}", r) for s, e, r in
                          _split(src_of_row[rows], exps)]
            elif kind in ("date", "category"):
                rows, idx, bit = (read_dates(col, pos) if kind == "date"
                                  else read_category(col, pos, carrier.variants))
                labels = [(f"s{s}|{plan_name}", r) for s, _, r in
                          _split(src_of_row[rows], np.zeros(rows.size, dtype=np.int64))]
            else:
                keep, bit = read_masked_at(col, pos.rows)
                rows, idx = pos.rows[keep], pos.bit[keep]
                bit = bit ^ pos.mask[keep]
                labels = [(f"s{s}|{plan_name}", r) for s, _, r in
                          _split(src_of_row[rows], np.zeros(rows.size, dtype=np.int64))]
            for label, sel in labels:
                g.vote(label, kind, idx[sel], bit[sel])
            used[rows] = True
            per_source[src_of_row[rows], rows] = True
        g.rows_used += int(used.sum())
        for k in range(len(plan.sources)):
            g.source_rows[k] += int(per_source[k].sum())

    def _feed_v1(self, g: _Group, batch: pa.RecordBatch,
                 cache: dict[tuple[object, ...], np.ndarray]) -> None:
        # Registry records of earlier releases: one row key, last-digit marks.
        kt = ("key", *g.keys)
        if kt not in cache:
            keys = virtual_keys([as_string(batch.column(k)) for k in g.keys])
            cache[kt] = row_hashes(keys, self.secret)
        h = cache[kt]
        for plan_name, name, kind in g.columns:
            sel = mix(h, column_salt(self.secret, plan_name))
            col = as_string(batch.column(name))
            if kind == "numeric":
                idx, bit = read_numeric(col, sel, gamma=g.plan.gamma,
                                        min_digits=g.plan.min_digits,
                                        code_bits=g.plan.code_bits)
            else:
                idx, bit = read_masked(col, sel, gamma=g.plan.gamma,
                                       code_bits=g.plan.code_bits)
            g.vote("legacy", "legacy", idx, bit)
        g.rows_used += batch.num_rows

    def verdict(self) -> Verdict:
        """The verdict with its evidence; "none" unless a p-value survives correction."""
        if not self._bound:
            raise WatermarkError("the suspect table is empty (no header, no rows)")
        groups = [g for g in self._groups.values() if g.usable]
        # 2. Count the tests: one per (plan, recipient) pair, times the statistics of a plan.
        tested = {(id(g), c.recipient): (g, c) for g in groups for c in g.copies}
        tests = max(len(tested), 1)
        stats = {id(g): statistics(g.votes, g.kinds, g.pools, g.plan.code_bits) for g in groups}
        per_plan = max((max(len(s), 1) for s in stats.values()), default=1)
        need = bits_needed(tests * per_plan, self.alpha)
        # 3. Score every recipient on every statistic; keep its best, corrected for how
        #    many statistics were tried.
        best: dict[str, Candidate] = {}
        detail: dict[tuple[int, str], dict[str, dict[str, Any]]] = {}
        for g in groups:
            words = np.stack([codeword_from_hex(c.codeword, g.plan.code_bits)
                              for c in g.copies])
            gstats = stats[id(g)]
            k = max(len(gstats), 1)
            results = [(st, *agreements(st, words)) for st in gstats]
            for i, c in enumerate(g.copies):
                per = {st.name: {"cells": st.cells, "bits": st.n, "agreement": int(ag[i]),
                                 "p_value": float(p[i])} for st, ag, p in results}
                detail[(id(g), c.recipient)] = per
                if results:
                    st, ag, p = min(results, key=lambda r: r[2][i])
                    pv, bits, agree, name = min(1.0, float(p[i]) * k), st.n, int(ag[i]), st.name
                else:
                    pv, bits, agree, name = 1.0, 0, 0, "none"
                hits = g.canary_hits.get(c.recipient, 0)
                if hits:
                    # A 64-bit keyed hash collision of an unrelated row with a canary key.
                    pv = min(pv, self.rows * len(c.canary_keys) * 2.0 ** -64)
                adj = min(1.0, pv * tests)
                cand = Candidate(c.recipient, (c.dataset,), bits, agree, pv, adj,
                                 adj < self.alpha, hits, name, k)
                old = best.get(c.recipient)
                if old is None or cand.p_value < old.p_value:
                    datasets = tuple(sorted(set(cand.datasets + (old.datasets if old else ()))))
                    best[c.recipient] = replace(cand, datasets=datasets)
        ranked = sorted(best.values(), key=lambda x: (x.p_value, x.recipient))
        accused = [c for c in ranked if c.accused]
        shown = accused + [c for c in ranked if not c.accused][:5]
        top = ranked[0] if ranked else None
        evidence = self._evidence(groups, stats, detail, top, tests, need)
        if accused:
            win = accused[0]
            msg = (f"watermark of {win.recipient}: {win.agreement}/{win.bits} bits agree "
                   f"({win.statistic}), p = {win.p_value:.3g} (corrected {win.p_adjusted:.3g} "
                   f"< {self.alpha:g})")
            return Verdict("match", win.recipient, win.p_value, tuple(shown), evidence, msg)
        msg = "no watermark found"
        recovered = evidence["bits_recovered"]
        cells = evidence["marked_cells_seen"]
        if recovered < need and not evidence["canary_rows"]:
            more = _more_cells(cells, recovered, need)
            msg += (f": only {recovered} codeword bits recovered from {cells} marked cells, "
                    f"at least {need} are needed to reach p < {self.alpha:g} over {tests} "
                    f"recipients (about {more} more marked cells)")
        return Verdict("none", None, top.p_value if top else None, tuple(shown), evidence, msg)

    def _evidence(self, groups: list[_Group], stats: dict[int, list[Statistic]],
                  detail: dict[tuple[int, str], dict[str, dict[str, Any]]],
                  top: Candidate | None, tests: int, need: int) -> dict[str, Any]:
        # 4. Evidence: how much was read, per carrier and combined, and what part of the
        #    issued copy the suspect matched.
        cells = sum(v.cells for g in groups for v in g.votes.values())
        recovered = max((s.n for ss in stats.values() for s in ss), default=0)
        home = next((g for g in groups if top and any(c.recipient == top.recipient
                                                      for c in g.copies)), None)
        carriers: dict[str, Any] = {}
        share = None
        sources: list[dict[str, Any]] = []
        rows_used = max((g.rows_used for g in groups), default=0)
        if home is not None and top is not None:
            carriers = detail.get((id(home), top.recipient), {})
            rows_used = home.rows_used
            issued = max((c.rows for c in home.copies if c.recipient == top.recipient),
                         default=0)
            share = round(rows_used / issued, 4) if issued else None
            for src, cols, n in zip(home.plan.sources, home.sources, home.source_rows,
                                    strict=False):
                sources.append({"columns": list(src.columns), "forms": list(src.forms),
                                "role": src.role, "present": cols is not None, "rows": n})
            for st in stats[id(home)]:
                if st.name in carriers:
                    carriers[st.name]["weights"] = st.weights
        return {
            "rows_seen": self.rows,
            "rows_used": rows_used,
            "share_of_copy": share,
            "marked_cells_seen": cells,
            "bits_recovered": recovered,
            "bits_needed": need,
            "agreement": top.agreement if top else 0,
            "agreement_bits": top.bits if top else 0,
            "p_value": top.p_value if top else None,
            "statistic": top.statistic if top else None,
            "carriers": carriers,
            "sources": sources,
            "recipients_tested": tests,
            "alpha": self.alpha,
            "correction": (f"Bonferroni: p-values multiplied by {tests} recipients tested "
                           f"and by the {top.statistics if top else 1} statistics tried"),
            "columns_used": sorted({n for g in groups for _, n, _ in g.columns}),
            "canary_rows": sum(sum(g.canary_hits.values()) for g in groups),
        }


def _split(sources: np.ndarray, exps: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """Index sets of the cells per (source, level)."""
    if sources.size == 0:
        return []
    key = sources * 1000 + (exps + 100)
    out = []
    for k in np.unique(key).tolist():
        out.append((k // 1000, k % 1000 - 100, np.flatnonzero(key == k)))
    return out


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _more_cells(cells: int, recovered: int, need: int) -> int:
    # Distinct bits of m cells over L bits ~ L (1 - exp(-m / L)); L unknown here, so
    # use the observed ratio of cells to bits (or one cell per bit when nothing was seen).
    ratio = cells / recovered if recovered else 1.0
    return max(math.ceil(need * ratio) - cells, 1)


def detect_batches(batches: Iterable[pa.RecordBatch], secret: bytes,
                   copies: Sequence[IssuedCopy], *, alpha: float = 1e-6) -> Verdict:
    """Detect over a stream of batches."""
    det = Detector(secret, copies, alpha=alpha)
    for b in batches:
        det.feed(b)
    return det.verdict()


def detect_table(table: pa.Table, secret: bytes, copies: Sequence[IssuedCopy], *,
                 alpha: float = 1e-6) -> Verdict:
    """Detect in an in-memory table."""
    batches = table.to_batches(max_chunksize=65536) or [
        pa.RecordBatch.from_pylist([], schema=table.schema)]
    return detect_batches(batches, secret, copies, alpha=alpha)
