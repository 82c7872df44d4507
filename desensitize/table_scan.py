"""Column scanning of tables given as a stream of Arrow record batches.

Per batch and column, candidates are found with vectorised RE2 kernels
(``pyarrow.compute.match_substring_regex`` over the whole column) and only the
candidates go through the Python validators (checksums, tables).  Memory is
constant in the number of rows: per column we keep counters, a capped set for the
distinct ratio and a capped list of text values for free-text columns; the
k-anonymity counter is capped too.  Whether the batches are a sample spread over the
file or the whole file is the caller's choice (``sampled`` flag of the report).

In long scans a column stops running the kernel of an entity that had no candidate
in its first ``settle_after`` values, and validators run on a spread subset of at most
``validate_cap`` candidates per batch (``expensive_cap`` for names and addresses) whose
pass count is extrapolated: every row is still read and pattern-matched.

Small batches (at most ``small_rows`` rows, e.g. one record sent to the masking API)
take a row-wise path with the same counters: the same patterns, compiled once per
process for the ``regex`` module with RE2's meaning (``\\d`` and ``\\S`` ASCII, ``$`` only
at the end), instead of an Arrow kernel call per pattern, whose RE2 compilation costs far
more than matching a few values.

Free-text columns (long values that are not one entity) are scanned with the
:class:`~desensitize.text_scan.TextScanner` on up to ``text_values`` values each,
and report the entities found inside them.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import regex

from desensitize.classify import ColumnEvidence, DatasetReport, classify_column
from desensitize.errors import ScanInputError
from desensitize.headers import hint_for
from desensitize.recognizers import STRUCTURED
from desensitize.recognizers.location import plausible_address
from desensitize.recognizers.person import plausible_name
from desensitize.recognizers.resident_id import county_known
from desensitize.standards import fold_width
from desensitize.text_scan import TextScanner


@dataclass(frozen=True)
class Kernel:
    """A whole-cell candidate pattern (RE2), its validator and the lengths it can match."""

    entity: str
    pattern: str
    validate: Callable[[str], bool]
    min_len: int
    max_len: int
    strong: Callable[[str], bool] | None = None  # a valid value that is also well attested

    @property
    def ascii_pattern(self) -> str:
        """The pattern without its full-width alternatives (for all-ASCII columns, where
        RE2 runs faster on byte classes)."""
        return _ascii_only(self.pattern)


@functools.cache
def _ascii_only(pattern: str) -> str:
    return re.sub("[\uff00-\uffef](?:-[\uff00-\uffef])?", "", pattern)


@functools.cache
def kernels() -> tuple[Kernel, ...]:
    """The kernels of every entity, structured first (their order breaks ties); built once."""
    lengths = {
        "CN_RESIDENT_ID": (15, 75), "CN_USCC": (18, 36), "CN_BANK_CARD": (16, 23),
        "PHONE_NUMBER": (7, 22), "CN_LICENSE_PLATE": (7, 9), "CN_PASSPORT": (9, 9),
        "EMAIL_ADDRESS": (5, 254), "IP_ADDRESS": (2, 45),
    }
    # GB/T 2260: an ID whose county code no list ever held is valid but weaker evidence
    strong = {"CN_RESIDENT_ID": county_known}
    out = [Kernel(c.ENTITY, c.COLUMN_PATTERN, c.is_valid, *lengths[c.ENTITY], strong.get(c.ENTITY))
           for c in STRUCTURED]
    out.append(Kernel("PERSON", r"^(?:\p{Han}{2,4}|\p{Han}{1,8}[·•・]\p{Han}{1,8})$",
                      plausible_name, 2, 17))
    out.append(Kernel("LOCATION", r"(?:路|街|巷|弄|道|号|室|村|栋|幢|座|楼|单元|小区|花园|苑)",
                      plausible_address, 6, 200))
    return tuple(out)


_QI_CHECKS = {
    "gender": r"^(?:男|女|男性|女性|未知|[MFmf]|male|female|Male|Female)$",
    "age": r"^(?:\d{1,3})(?:岁)?$",
    "birth_date": r"^(?:19|20)\d{2}[-/.年]?\d{1,2}[-/.月]?\d{1,2}日?(?:[ T].*)?$",
    "district": r"(?:区|县|市|旗|街道|镇|乡)$",
    "occupation": r"^\S{1,12}$",
}
_TEXT_HINT = r"\p{Han}"
# code-shaped values (member numbers, hashes, account numbers); decimals and dates are not
_KEY_SHAPE = r"^[0-9A-Za-z][0-9A-Za-z_\-./:#]{7,63}$"
_NOT_KEY = r"^[-+]?\d+\.\d+$|^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"
_KEY_SAMPLE = 2_000
# A batch of a column whose values hold a full-width letter, digit or ``＠`` goes through
# the kernels folded to ASCII (``fold_width``): ``ｚｗ＠ｅｘａｍｐｌｅ．ｃｏｍ`` is an e-mail.
# Only the kernels see the folded values; free texts reach the text scanner as written.
_WIDE_RE2 = "[\uff10-\uff19\uff20-\uff3a\uff41-\uff5a]"
_WIDE = regex.compile(_WIDE_RE2)
# validators that segment or run several regexes per value: a spread subset of at most
# ``expensive_cap`` candidates per batch is validated and the count extrapolated
_EXPENSIVE = frozenset({"PERSON", "LOCATION"})


# RE2 (the Arrow kernels) → the ``regex`` module, same meaning: RE2's \d is [0-9], its \s
# is [\t\n\f\r ], and its $ (no multi-line flag) matches only at the very end.
_RE2_CLASSES = {"\\d": "[0-9]", "\\S": "[^\\t\\n\\f\\r ]", "\\s": "[\\t\\n\\f\\r ]"}


@functools.cache
def row_pattern(pattern: str) -> regex.Pattern[str]:
    """``pattern`` (RE2 syntax, as given to the Arrow kernels) compiled for row-wise use."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            pair = pattern[i:i + 2]
            if pair in _RE2_CLASSES:
                if in_class and pair == "\\S":
                    raise ValueError(f"\\S inside a class is not translated: {pattern!r}")
                rep = _RE2_CLASSES[pair]
                out.append(rep[1:-1] if in_class else rep)
            else:
                out.append(pair)
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
            out.append(ch)
            if pattern[i + 1:i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1:i + 2] == "]":  # a literal ] first in a class
                out.append("\\]")
                i += 1
        elif ch == "]" and in_class:
            in_class = False
            out.append(ch)
        elif ch == "$" and not in_class:
            out.append("\\Z")
        else:
            out.append(ch)
        i += 1
    return regex.compile("".join(out), regex.VERSION0)


@dataclass
class _Column:
    name: str
    non_empty: int = 0
    valid: Counter[str] = field(default_factory=Counter)
    strong: Counter[str] = field(default_factory=Counter)
    candidates: Counter[str] = field(default_factory=Counter)
    qi_ok: int = 0
    total_len: int = 0
    distinct: set[str] = field(default_factory=set)
    distinct_seen: int = 0
    texts: list[str] = field(default_factory=list)
    key_shaped: int = 0


def _count_valid(col: _Column, k: Kernel, subset: list[str], count: int) -> None:
    """Credit ``col`` with the valid (and strongly attested) share of ``count`` candidates,
    extrapolated from the checked ``subset`` (both scan paths count the same way)."""
    passed = [v for v in subset if k.validate(v)]
    col.valid[k.entity] += round(len(passed) * count / len(subset))
    if k.strong is not None:
        attested = sum(1 for v in passed if k.strong(v))
        col.strong[k.entity] += round(attested * count / len(subset))


@dataclass
class TableScanner:
    """Scan record batches and classify their columns (see module docstring)."""

    text_scanner: TextScanner | None = None
    text_values: int = 500
    distinct_cap: int = 10_000
    validate_cap: int = 2_000
    expensive_cap: int = 300
    kanon_cap: int = 2_000_000
    settle_after: int = 50_000
    small_rows: int = 64  # batches up to this size take the row-wise path

    def scan(
        self, batches: Iterable[pa.RecordBatch], *, sampled: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> DatasetReport:
        """Classify the columns of ``batches``; raise ScanInputError when there are no rows."""
        ks = kernels()
        cols: list[_Column] = []
        qi_kinds: list[str | None] = []
        kanon: Counter[tuple[object, ...]] = Counter()
        kanon_overflow = False
        rows = 0
        for batch in batches:
            if not cols:
                if batch.num_columns == 0:
                    raise ScanInputError("the table has no columns")
                cols = [_Column(name) for name in batch.schema.names]
                qi_kinds = [hint_for(name).quasi_identifier for name in batch.schema.names]
            if batch.num_rows == 0:
                continue
            rows += batch.num_rows
            small = batch.num_rows <= self.small_rows
            for col, array in zip(cols, batch.columns, strict=False):
                if small:
                    self._scan_rows(col, array, ks, qi_kinds[cols.index(col)])
                else:
                    self._scan_array(col, array, ks, qi_kinds[cols.index(col)])
            qi_idx = [i for i, q in enumerate(qi_kinds) if q]
            if qi_idx and not kanon_overflow and small:
                keys = zip(*(pc.cast(batch.column(i), pa.string()).to_pylist() for i in qi_idx),
                           strict=True)
                kanon.update(keys)
                if len(kanon) > self.kanon_cap:
                    kanon_overflow = True
                    kanon.clear()
            elif qi_idx and not kanon_overflow:
                names = [f"c{i}" for i in qi_idx]
                table = pa.table([pc.cast(batch.column(i), pa.string()) for i in qi_idx], names=names)
                grouped = table.group_by(names).aggregate([([], "count_all")])
                for rec in grouped.to_pylist():
                    kanon[tuple(rec[n] for n in names)] += rec["count_all"]
                if len(kanon) > self.kanon_cap:
                    kanon_overflow = True
                    kanon.clear()
            if progress is not None:
                progress(rows)
        if rows == 0:
            raise ScanInputError("the table has no rows")
        return self._report(cols, qi_kinds, kanon, kanon_overflow, rows, sampled)

    def _scan_array(self, col: _Column, array: pa.Array, ks: tuple[Kernel, ...],
                    qi_kind: str | None) -> None:
        if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
            array = pc.cast(array, pa.string())
        s = pc.utf8_trim_whitespace(array)
        lens = pc.utf8_length(s)
        present = pc.fill_null(pc.greater(lens, 0), False)
        n = pc.sum(present).as_py() or 0
        if n == 0:
            return
        s = s.filter(present)
        lens = lens.filter(present)
        col.non_empty += n
        col.total_len += pc.sum(lens).as_py() or 0
        mm = pc.min_max(lens).as_py()
        lo, hi = mm["min"], mm["max"]
        settled = col.non_empty - n >= self.settle_after
        ascii_only = bool(pc.all(pc.string_is_ascii(s)).as_py())
        cells = s
        if not ascii_only and pc.any(pc.match_substring_regex(s, _WIDE_RE2)).as_py():
            cells = pa.array([fold_width(v) for v in s.to_pylist()], type=s.type)
            ascii_only = bool(pc.all(pc.string_is_ascii(cells)).as_py())
        for k in ks:
            if hi < k.min_len or lo > k.max_len:
                continue
            if settled and not col.candidates[k.entity]:
                continue  # no candidate in the first ``settle_after`` values: not this entity
            mask = pc.match_substring_regex(cells, k.ascii_pattern if ascii_only else k.pattern)
            count = pc.sum(mask).as_py() or 0
            col.candidates[k.entity] += count
            if not count:
                continue
            cands = cells.filter(mask)
            cap = self.validate_cap if k.entity not in _EXPENSIVE else self.expensive_cap
            if count > cap:  # validate a spread subset, extrapolate
                step = count // cap + 1
                subset = cands.take(pa.array(range(0, count, step))).to_pylist()
            else:
                subset = cands.to_pylist()
            _count_valid(col, k, subset, count)
        if len(col.distinct) < self.distinct_cap:
            room = self.distinct_cap - len(col.distinct)
            head = s.slice(0, room).to_pylist()
            col.distinct.update(head)
            col.distinct_seen += len(head)
        if hi >= 8:  # a share is all we need: measure it on a slice, scale to the batch
            head = s.slice(0, _KEY_SAMPLE)
            shaped = head.filter(pc.match_substring_regex(head, _KEY_SHAPE))
            ok = len(shaped) - (pc.sum(pc.match_substring_regex(shaped, _NOT_KEY)).as_py() or 0)
            col.key_shaped += round(ok * n / len(head))
        if qi_kind:
            col.qi_ok += pc.sum(pc.match_substring_regex(s, _QI_CHECKS[qi_kind])).as_py() or 0
        if len(col.texts) < self.text_values:
            wordy = pc.and_(pc.greater_equal(lens, 6), pc.match_substring_regex(s, _TEXT_HINT))
            texts = s.filter(wordy)
            col.texts.extend(texts.slice(0, self.text_values - len(col.texts)).to_pylist())

    def _scan_rows(self, col: _Column, array: pa.Array, ks: tuple[Kernel, ...],
                   qi_kind: str | None) -> None:
        """:meth:`_scan_array` row by row, for small batches (same counters, same result)."""
        if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
            array = pc.cast(array, pa.string())
        s = [v for v in pc.utf8_trim_whitespace(array).to_pylist() if v]
        n = len(s)
        if n == 0:
            return
        lens = [len(v) for v in s]
        col.non_empty += n
        col.total_len += sum(lens)
        lo, hi = min(lens), max(lens)
        settled = col.non_empty - n >= self.settle_after
        ascii_only = all(v.isascii() for v in s)
        cells = s
        if not ascii_only and any(_WIDE.search(v) for v in s):
            cells = [fold_width(v) for v in s]
            ascii_only = all(v.isascii() for v in cells)
        for k in ks:
            if hi < k.min_len or lo > k.max_len:
                continue
            if settled and not col.candidates[k.entity]:
                continue
            search = row_pattern(k.ascii_pattern if ascii_only else k.pattern).search
            cands = [v for v in cells if search(v)]
            count = len(cands)
            col.candidates[k.entity] += count
            if not count:
                continue
            cap = self.validate_cap if k.entity not in _EXPENSIVE else self.expensive_cap
            subset = cands[::count // cap + 1] if count > cap else cands
            _count_valid(col, k, subset, count)
        if len(col.distinct) < self.distinct_cap:
            head = s[:self.distinct_cap - len(col.distinct)]
            col.distinct.update(head)
            col.distinct_seen += len(head)
        if hi >= 8:
            head = s[:_KEY_SAMPLE]
            key, not_key = row_pattern(_KEY_SHAPE).search, row_pattern(_NOT_KEY).search
            ok = sum(1 for v in head if key(v) and not not_key(v))
            col.key_shaped += round(ok * n / len(head))
        if qi_kind:
            check = row_pattern(_QI_CHECKS[qi_kind]).search
            col.qi_ok += sum(1 for v in s if check(v))
        if len(col.texts) < self.text_values:
            hint = row_pattern(_TEXT_HINT).search
            texts = [v for v, n_ in zip(s, lens, strict=True) if n_ >= 6 and hint(v)]
            col.texts.extend(texts[:self.text_values - len(col.texts)])

    def _report(self, cols: list[_Column], qi_kinds: list[str | None], kanon: Counter[tuple[object, ...]],
                overflow: bool, rows: int, sampled: bool) -> DatasetReport:
        reports = []
        confirmed: list[int] = []
        for i, col in enumerate(cols):
            qi = qi_kinds[i]
            if qi and col.non_empty and col.qi_ok / col.non_empty < 0.6:
                qi = None
            if qi:
                confirmed.append(i)
            hint = hint_for(col.name).entity
            avg = col.total_len / col.non_empty if col.non_empty else 0.0
            ev = ColumnEvidence(
                name=col.name, non_empty=col.non_empty, valid=dict(col.valid),
                distinct_ratio=len(col.distinct) / col.distinct_seen if col.distinct_seen else 1.0,
                hint_entity=hint, quasi_identifier=qi, free_text=avg >= 12 and bool(col.texts),
                key_shaped=col.key_shaped, strong=dict(col.strong),
                # only a column no recognizer claims can be key-like: skip the others
                key_bits=0.0 if max(col.valid.values(), default=0) >= 0.3 * col.non_empty
                else _positional_bits(col),
            )
            report = classify_column(ev)
            if report.entity is None and col.texts:
                ev = ColumnEvidence(**{**ev.__dict__, "contains": self._contains(col.texts)})
                report = classify_column(ev)
            reports.append(report)
        kmin: int | None = None
        if confirmed and kanon and not overflow:
            all_qi = [i for i, q in enumerate(qi_kinds) if q]
            pos = [all_qi.index(i) for i in confirmed]
            projected: Counter[tuple[object, ...]] = Counter()
            for key, count in kanon.items():
                projected[tuple(key[p] for p in pos)] += count
            kmin = min(projected.values())
        return DatasetReport(
            columns=tuple(reports), rows_scanned=rows, sampled=sampled,
            quasi_identifiers=tuple(cols[i].name for i in confirmed), k_anonymity=kmin,
        )

    def _contains(self, texts: list[str]) -> dict[str, int]:
        scanner = self.text_scanner or TextScanner()
        self.text_scanner = scanner
        found: Counter[str] = Counter()
        counts = Counter(texts)
        for text, findings in zip(counts, scanner.scan_many(counts), strict=True):
            for entity in {f.entity for f in findings}:
                found[entity] += counts[text]
        return dict(found)


def _positional_bits(col: _Column) -> float:
    """Bits per value of a code-shaped column: the Shannon entropy of each character
    position over the distinct values seen, summed (sequential numbers score low,
    random identifiers high).  0 for columns that are not nearly all code-shaped."""
    if not col.non_empty or col.key_shaped < 0.9 * col.non_empty or len(col.distinct) < 2:
        return 0.0
    if col.distinct_seen and len(col.distinct) < 0.9 * col.distinct_seen:
        return 0.0  # not unique enough to be a key: no need to measure
    positions: list[Counter[str]] = []
    sample = list(itertools.islice(col.distinct, 2048))
    for value in sample:
        for i, ch in enumerate(value[:64]):
            if i == len(positions):
                positions.append(Counter())
            positions[i][ch] += 1
    n = len(sample)
    return sum(-sum(c / n * math.log2(c / n) for c in pos.values()) for pos in positions)


def scan_batches(batches: Iterable[pa.RecordBatch], *, sampled: bool = True,
                 progress: Callable[[int], None] | None = None) -> DatasetReport:
    """Convenience wrapper: ``TableScanner().scan(batches, ...)``."""
    return TableScanner().scan(batches, sampled=sampled, progress=progress)
