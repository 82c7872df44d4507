"""Mask a whole table: source → plan → masker → writer, with k-anonymity before/after.

``columns_from_report`` turns the scanner's :class:`~desensitize.classify.DatasetReport`
into plain :class:`~desensitize.plan.ColumnInfo` s; ``span_finder_for`` adapts a
:class:`~desensitize.text_scan.TextScanner`; ``run_mask`` streams the batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from desensitize.keys import Keyring
from desensitize.masker import Masker, MaskStats, SpanFinder
from desensitize.plan import ColumnInfo, MaskPlan
from desensitize.risk import KAnonymity, KResult
from desensitize.suspects import merge_spans, suspect_spans


@dataclass(frozen=True)
class MaskResult:
    """What a masking run did: the plan, counters and the risk figures (no values)."""

    plan: MaskPlan
    stats: MaskStats
    k_before: KResult
    k_after: KResult
    output_columns: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_dict(),
            **self.stats.to_dict(),
            "columns": list(self.output_columns),
            "k_anonymity": {"before": self.k_before.to_dict(), "after": self.k_after.to_dict()},
        }


def columns_from_report(
    report: Any, *, entity_grade: Callable[[str], str | None] | None = None
) -> list[ColumnInfo]:
    """Plain column infos from a scanner ``DatasetReport`` (duck-typed).

    Masking errs on the safe side: a column whose header names an entity (姓名,
    SFZH, ...) is masked as that entity even when its values did not confirm it
    (test data with bad check digits, unusual formats); the plan says "(header)".
    """
    out = []
    for c in report.columns:
        contains = tuple(e for e, _n in getattr(c, "contains", ()) or ())
        kind = getattr(c, "kind", "value")
        hint = getattr(c, "header_hint", None)
        if c.entity is None and hint and kind != "empty":
            grade = entity_grade(hint) if entity_grade else c.grade
            out.append(ColumnInfo(c.name, hint, grade, quasi_identifier=getattr(c, "quasi_identifier", None),
                                  header_only=True))
            continue
        out.append(ColumnInfo(c.name, c.entity, c.grade, kind == "free_text" and c.entity is None,
                              contains, getattr(c, "quasi_identifier", None)))
    return out


def quasi_from_report(report: Any) -> list[str]:
    return [c.name for c in report.columns if getattr(c, "quasi_identifier", None)]


def span_finder_for(scanner: Any) -> SpanFinder:
    """Adapt a TextScanner (``scan_many``) to the masker's span-finder signature.

    Conservative: ID- and card-shaped digit runs are masked even when their check
    character fails (:mod:`desensitize.suspects`)."""

    def find(texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        return [
            merge_spans([(f.start, f.end, f.entity) for f in fs], suspect_spans(text))
            for text, fs in zip(texts, scanner.scan_many(texts), strict=True)
        ]

    return find


def run_mask(
    batches: Any,
    writer: Any,
    plan: MaskPlan,
    *,
    keyring: Keyring | None,
    span_finder: SpanFinder | None = None,
    quasi_identifiers: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
) -> MaskResult:
    """Mask ``batches`` into ``writer`` (the caller opens and closes the writer)."""
    masker = Masker(plan, keyring=keyring, span_finder=span_finder)
    before = KAnonymity(quasi_identifiers)
    after = KAnonymity(quasi_identifiers)
    out_cols: tuple[str, ...] = ()
    for batch in batches:
        before.update(batch)
        masked = masker.mask_batch(batch)
        after.update(masked)
        out_cols = tuple(masked.schema.names)
        writer.write(masked)
        if progress is not None:
            progress(batch.num_rows)
    if not out_cols:
        out_cols = tuple(c.name for c in plan.columns if c.op != "suppress")
    return MaskResult(
        plan, masker.stats, before.result(), after.result(out_cols), out_cols
    )
