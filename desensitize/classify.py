"""Column classification, grades and the k-anonymity figure (分类分级, 风险评估).

Decision rule for one column (a header alone never decides):

1. ``hit_rate(E)`` = values that pass entity E's validator / non-empty values.
2. With a header hint E: E is chosen when ``hit_rate(E) >= HINT_MIN`` (values agree);
   otherwise the best entity needs ``VALUE_MIN`` like a column without a hint.
3. Without a hint: the best entity needs ``hit_rate >= VALUE_MIN``; PERSON also needs
   many distinct values (a column of 教师/工人 is not a column of names).
4. Confidence = hit rate, scaled by how much the validator proves (checksums prove
   more than name shapes) and raised when the header agrees.

Grades come from a plain ``entity -> grade`` mapping and an ordered grade list (low
to high); the dataset grade is the highest column grade.  Quasi-identifiers (birth
date, gender, district, age, occupation) are flagged and the size of the smallest
equivalence class over them is reported (k-anonymity).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

HINT_MIN = 0.3
VALUE_MIN = 0.6
PERSON_DISTINCT_MIN = 0.3
_PROOF = {
    "CN_RESIDENT_ID": 1.0, "CN_USCC": 1.0, "CN_BANK_CARD": 0.95, "EMAIL_ADDRESS": 1.0,
    "IP_ADDRESS": 0.95, "PHONE_NUMBER": 0.95, "CN_LICENSE_PLATE": 0.95,
    "CN_PASSPORT": 0.85, "PERSON": 0.85, "LOCATION": 0.9,
}


@dataclass(frozen=True)
class ColumnEvidence:
    """What the scanner measured in one column."""

    name: str
    non_empty: int
    valid: Mapping[str, int]
    distinct_ratio: float = 1.0
    hint_entity: str | None = None
    quasi_identifier: str | None = None
    free_text: bool = False
    contains: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ColumnReport:
    """The classification of one column (see module docstring)."""

    name: str
    entity: str | None
    confidence: float
    hit_rate: float
    grade: str | None = None
    kind: str = "value"  # value | free_text | empty
    contains: tuple[tuple[str, int], ...] = ()
    header_hint: str | None = None
    quasi_identifier: str | None = None
    non_empty: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name, "entity": self.entity, "confidence": round(self.confidence, 3),
            "hit_rate": round(self.hit_rate, 3), "grade": self.grade, "kind": self.kind,
            "contains": [{"entity": e, "count": n} for e, n in self.contains],
            "header_hint": self.header_hint, "quasi_identifier": self.quasi_identifier,
            "non_empty": self.non_empty,
        }


@dataclass(frozen=True)
class DatasetReport:
    """The classification of a whole table."""

    columns: tuple[ColumnReport, ...]
    rows_scanned: int
    sampled: bool
    dataset_grade: str | None = None
    quasi_identifiers: tuple[str, ...] = ()
    k_anonymity: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "columns": [c.to_dict() for c in self.columns],
            "dataset_grade": self.dataset_grade, "rows_scanned": self.rows_scanned,
            "sampled": self.sampled, "quasi_identifiers": list(self.quasi_identifiers),
            "k_anonymity": self.k_anonymity,
        }


def classify_column(ev: ColumnEvidence) -> ColumnReport:
    """Apply the decision rule of the module docstring to one column."""
    if ev.non_empty == 0:
        return ColumnReport(ev.name, None, 0.0, 0.0, kind="empty", header_hint=ev.hint_entity,
                            quasi_identifier=ev.quasi_identifier)
    rates = {e: n / ev.non_empty for e, n in ev.valid.items() if n}
    contains = tuple(sorted(ev.contains.items(), key=lambda kv: (-kv[1], kv[0])))
    chosen: str | None = None
    if ev.hint_entity and rates.get(ev.hint_entity, 0.0) >= HINT_MIN:
        chosen = ev.hint_entity
    else:
        for entity, rate in sorted(rates.items(), key=lambda kv: -kv[1]):
            if rate < VALUE_MIN:
                break
            if entity == "PERSON" and ev.distinct_ratio < PERSON_DISTINCT_MIN and ev.hint_entity != "PERSON":
                continue
            chosen = entity
            break
    if chosen is None:
        kind = "free_text" if ev.free_text else "value"
        return ColumnReport(ev.name, None, 0.0, 0.0, kind=kind, contains=contains,
                            header_hint=ev.hint_entity, quasi_identifier=ev.quasi_identifier,
                            non_empty=ev.non_empty)
    rate = rates[chosen]
    confidence = rate * _PROOF.get(chosen, 0.9)
    if ev.hint_entity == chosen:
        confidence = min(1.0, confidence + 0.1 * (1 - confidence) + 0.05)
    return ColumnReport(ev.name, chosen, min(confidence, 1.0), rate, contains=contains,
                        header_hint=ev.hint_entity, quasi_identifier=ev.quasi_identifier,
                        non_empty=ev.non_empty)


def _max_grade(grades: Sequence[str | None], order: Sequence[str]) -> str | None:
    rank = {g: i for i, g in enumerate(order)}
    present = [g for g in grades if g is not None]
    if not present:
        return None
    return max(present, key=lambda g: rank.get(g, -1))


def grade_dataset(
    report: DatasetReport, entity_grades: Mapping[str, str], grade_order: Sequence[str],
) -> DatasetReport:
    """Attach grades: a column's grade is its entity's (or the highest of the entities
    found inside a free-text column); the dataset grade is the highest column grade.
    Columns with no personal information get the lowest grade of ``grade_order``."""
    lowest = grade_order[0] if grade_order else None
    columns = []
    for col in report.columns:
        if col.entity is not None:
            grade = entity_grades.get(col.entity, lowest)
        elif col.contains:
            grade = _max_grade([entity_grades.get(e, lowest) for e, _ in col.contains], grade_order)
        else:
            grade = lowest
        columns.append(replace(col, grade=grade))
    dataset = _max_grade([c.grade for c in columns], grade_order)
    return replace(report, columns=tuple(columns), dataset_grade=dataset)
