"""Choosing the row identities and the carriers of a copy from its first batch.

Every column is profiled by its values (:mod:`watermark.profile`); every column that can
carry a mark within the usability bound does: measures (at their levels), dates (when
``date_shift`` allows a day's move), categories already written in equivalent spellings,
masked values (which of two renderings) and pseudonyms (which of two keyed characters). The primary key (named, or an ID
column found by its values and name) and a few quasi-identifier sets
(:mod:`watermark.identity`) are the sources rows are found by.
"""

from __future__ import annotations

import re

import pyarrow as pa

from watermark.category import variant_classes
from watermark.errors import NoMarkableColumns, WatermarkError
from watermark.identity import choose_sources
from watermark.masked import standard_counts
from watermark.models import Carrier, Params, Plan, Source
from watermark.numeric import as_string
from watermark.profile import ColumnProfile, profile_column
from watermark.pseudonym import pseudonym_form

_ID_NAME = re.compile(
    r"(^id$|_id$|^id_|^pk$|^key$|uuid|编号|主键|序号|流水号|^no$|_no$|编码$)", re.IGNORECASE)


def _find_key(names: list[str], profiles: dict[str, ColumnProfile],
              pseudonyms: tuple[str, ...] = ()) -> tuple[str, ...]:
    # Pseudonyms and fakes named for marking are found by value; they are never the key.
    names = [n for n in names if n not in pseudonyms]
    hinted = [n for n in names if _ID_NAME.search(n) and profiles[n].unique]
    if hinted:
        return (hinted[0],)
    coded = [n for n in names if profiles[n].kind == "id" and profiles[n].unique]
    return tuple(coded[:1])


_SAMPLE = 5000  # rows the plan is decided from


def pseudonym_columns(table: pa.Table | pa.RecordBatch, names: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``names`` (columns a masking plan made up: fakes, keyed pseudonyms) whose
    values take a form a pseudonym mark fits — hex pseudonyms, ID numbers, Luhn card
    numbers, digit strings. A made-up name or address carries no such mark and is left
    to the other carriers; a name not in the table is ignored."""
    sample = table.slice(0, min(table.num_rows, _SAMPLE))
    return tuple(n for n in dict.fromkeys(names) if n in sample.schema.names and
                 pseudonym_form(as_string(sample.column(n)), explicit=True) is not None)


def _carrier(name: str, p: ColumnProfile, params: Params, explicit: bool,
             arr: pa.Array) -> Carrier | None:
    if p.kind == "measure" and p.levels and name not in params.pseudonyms:
        return Carrier(name, "numeric", p.levels)
    named = name in params.pseudonyms
    if named or (params.mark_pseudonyms and p.kind in ("id", "text")):
        form = pseudonym_form(arr, explicit=named)
        if form is not None:
            return Carrier(name, "pseudonym", form=form)
        if named:
            raise WatermarkError(
                f"column {name!r} was named as pseudonyms but its values are not hex "
                "pseudonyms, ID numbers, Luhn card numbers or digit strings of at least "
                "nine digits")
    if p.kind in ("text", "discrete"):
        classes = variant_classes(arr)
        if classes:
            return Carrier(name, "category", variants=classes)
    if p.kind == "date" and params.date_shift and (p.dates_ok or explicit):
        return Carrier(name, "date")
    if p.kind == "masked" and (explicit or params.mark_masked):
        patterns = standard_counts(arr)
        if patterns and (explicit or p.masked_ok):
            return Carrier(name, "pattern", patterns=patterns)
    if explicit:
        raise WatermarkError(
            f"column {name!r} cannot carry a mark within the usability bound (it looks like "
            f"{p.kind} data; numbers need values of at least {1 / params.max_rel_error:g} "
            "units of the digit that would move)")
    return None


def plan_columns(batch: pa.RecordBatch, params: Params) -> Plan:
    """Decide the row identities and the marked columns from a sample batch.

    Raises ``WatermarkError`` for named columns that do not exist or cannot carry a mark,
    and ``NoMarkableColumns`` when nothing can carry a mark (unless canary rows are asked
    for, which need no carrier).
    """
    names = list(batch.schema.names)
    batch = batch.slice(0, min(batch.num_rows, _SAMPLE))
    cols = {n: as_string(batch.column(n)) for n in names}
    for n in params.key_columns + params.columns + params.pseudonyms:
        if n not in cols:
            raise WatermarkError(f"column {n!r} is not in the table (columns: {', '.join(names)})")
    profiles = {n: profile_column(n, cols[n], max_rel_error=params.max_rel_error,
                                  max_step=params.max_step) for n in names}
    keys = tuple(params.key_columns) or _find_key(names, profiles, params.pseudonyms)
    for n in params.pseudonyms:
        if n in keys:
            raise WatermarkError(f"column {n!r} is the row key and cannot also be marked "
                                 "as pseudonyms")
    carriers: list[Carrier] = []
    wanted = params.columns + tuple(n for n in params.pseudonyms if n not in params.columns) \
        if params.columns else tuple(n for n in names if n not in keys)
    for n in wanted:
        if n in keys:
            raise WatermarkError(f"column {n!r} is the row key and cannot be marked")
        c = _carrier(n, profiles[n], params, n in params.columns, cols[n])
        if c is not None:
            carriers.append(c)
    if not carriers and not params.canaries:
        raise NoMarkableColumns(tuple(names))
    kinds = {c.name: c.kind + (f":{c.form}" if c.form else "") for c in carriers}
    sources: list[Source] = []
    if keys:
        sources.append(Source(keys, tuple("exact" for _ in keys), "key"))
    sources.extend(choose_sources({n: cols[n] for n in names}, profiles, kinds, keys))
    mode = "primary" if keys else "virtual"
    if not keys:
        keys = tuple(sorted((n for n in names if n not in kinds),
                            key=lambda x: x.strip().lower()))
    if not sources:
        if not keys:
            raise WatermarkError(
                "every column would be marked, none is left to find rows by; "
                "name a key column or fewer columns to mark")
        sources.append(Source(keys, tuple("exact" for _ in keys), "qi"))
    bucketed = {c for s in sources for c, f in zip(s.columns, s.forms, strict=True)
                if f.startswith("bucket:")}
    carriers = [Carrier(c.name, c.kind, c.levels, profiles[c.name].bucket, c.variants)
                if c.name in bucketed else c for c in carriers]
    return Plan(
        key_mode=mode, key_columns=keys,
        numeric_columns=tuple(c.name for c in carriers if c.kind == "numeric"),
        masked_columns=tuple(c.name for c in carriers if c.kind in ("masked", "pattern")),
        gamma=params.gamma, code_bits=params.code_bits, min_digits=params.min_digits,
        version=3, carriers=tuple(carriers), sources=tuple(sources),
        max_rel_error=params.max_rel_error)
