"""Column classification, grades and the k-anonymity figure (分类分级, 风险评估).

Decision rule for one column (a header alone never decides):

1. ``hit_rate(E)`` = values that pass entity E's validator / non-empty values.
2. With a header hint E: E is chosen when ``hit_rate(E) >= HINT_MIN`` (values agree);
   otherwise the best entity needs ``VALUE_MIN`` like a column without a hint.
3. Without a hint: the best entity needs ``hit_rate >= VALUE_MIN``; PERSON also needs
   many distinct values (a column of 教师/工人 is not a column of names).
4. Confidence = hit rate, scaled by how much the validator proves (checksums prove
   more than name shapes), lowered when valid values are weakly attested (resident IDs
   whose GB/T 2260 county code is in no list) and raised when the header agrees.

Grades come from a plain ``entity -> grade`` mapping and an ordered grade list (low
to high); the dataset grade is the highest column grade.  Unknown means sensitive: a
column in which nothing was recognised is graded by the label ``UNRECOGNISED``, a
key-like one (nearly unique, long, code-shaped, high-entropy values: random member
numbers, hashes, IDs in a format no recognizer knows) by ``KEY_LIKE``, a quasi-identifier by ``QUASI_IDENTIFIER``;
a column the provider declares public and
that holds no personal information by ``DECLARED_PUBLIC`` (the officer's grading file
decides what a declaration is worth).  A label the mapping does not list gets the first
grade above the lowest, never the public one.  Quasi-identifiers (birth date, gender,
district, age, occupation) are flagged and the size of the smallest equivalence class
over them is reported (k-anonymity).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from desensitize.errors import ScanInputError

HINT_MIN = 0.3
VALUE_MIN = 0.6
KEY_LIKE_MIN = 0.9
"""Share of values that must be distinct and code-shaped for a key-like column."""
KEY_LIKE_ROWS = 20
"""Fewer non-empty values than this never make a column key-like (too little to tell)."""
KEY_LIKE_BITS = 24.0
"""Positional entropy (bits per value) a key-like column needs: random 8-digit member
numbers have about 26, sequential numbers ``00000001…`` about 12."""
UNRECOGNISED = "UNRECOGNISED"
KEY_LIKE = "KEY_LIKE"
DECLARED_PUBLIC = "DECLARED_PUBLIC"
QUASI_IDENTIFIER = "QUASI_IDENTIFIER"
GRADING_LABELS: tuple[str, ...] = (UNRECOGNISED, QUASI_IDENTIFIER, KEY_LIKE, DECLARED_PUBLIC)
"""Labels a grading file may list next to the entities (``policies/grading.yaml``)."""
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
    key_shaped: int = 0  # values that look like codes (see table_scan)
    key_bits: float = 0.0  # positional entropy of the distinct values, bits per value
    strong: Mapping[str, int] = field(default_factory=dict)  # valid values also well attested


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
    key_like: bool = False
    label: str | None = None  # what graded it: the entity, or one of GRADING_LABELS

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name, "entity": self.entity, "confidence": round(self.confidence, 3),
            "hit_rate": round(self.hit_rate, 3), "grade": self.grade, "kind": self.kind,
            "contains": [{"entity": e, "count": n} for e, n in self.contains],
            "header_hint": self.header_hint, "quasi_identifier": self.quasi_identifier,
            "non_empty": self.non_empty, "key_like": self.key_like, "label": self.label,
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
        key_like = (ev.non_empty >= KEY_LIKE_ROWS and ev.distinct_ratio >= KEY_LIKE_MIN
                    and ev.key_shaped / ev.non_empty >= KEY_LIKE_MIN and ev.key_bits >= KEY_LIKE_BITS
                    and not contains)
        return ColumnReport(ev.name, None, 0.0, 0.0, kind=kind, contains=contains,
                            header_hint=ev.hint_entity, quasi_identifier=ev.quasi_identifier,
                            non_empty=ev.non_empty, key_like=key_like)
    rate = rates[chosen]
    confidence = rate * _PROOF.get(chosen, 0.9)
    if chosen in ev.strong and ev.valid.get(chosen):
        # e.g. resident IDs whose county code is in no GB/T 2260 list: valid, less certain
        confidence *= 0.8 + 0.2 * min(1.0, ev.strong[chosen] / ev.valid[chosen])
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
    report: DatasetReport, entity_grades: Mapping[str, str], grade_order: Sequence[str], *,
    declared_public: Iterable[str] = (), declared_grade: str | None = None,
) -> DatasetReport:
    """Attach grades (就高从严, unknown means sensitive).

    A column's grade is its entity's, or the highest of the entities found inside a
    free-text column; otherwise that of ``KEY_LIKE`` (key-like columns),
    ``DECLARED_PUBLIC`` (columns in ``declared_public``: the provider's declaration,
    worth what the grading file says; it never lowers a column with personal
    information), ``QUASI_IDENTIFIER`` (confirmed quasi-identifiers) or ``UNRECOGNISED``
    (everything else, empty columns included).  A name
    ``entity_grades`` does not list gets the first grade above the lowest.  The dataset
    grade is the highest column grade and never below ``declared_grade``.
    """
    if declared_grade is not None and declared_grade not in grade_order:
        raise ScanInputError(f"declared grade {declared_grade!r} is not defined "
                             f"(known: {' '.join(grade_order)})")
    cautious = grade_order[min(1, len(grade_order) - 1)] if grade_order else None
    declared = frozenset(declared_public)

    def grade_of(name: str) -> str | None:
        return entity_grades.get(name, cautious)

    columns = []
    for col in report.columns:
        if col.entity is not None:
            label = col.entity
            grade = grade_of(label)
        elif col.contains:
            label = max((e for e, _ in col.contains), key=lambda e: _rank(grade_of(e), grade_order))
            grade = grade_of(label)
        else:
            if col.name in declared:
                label = DECLARED_PUBLIC
            elif col.key_like:
                label = KEY_LIKE
            elif col.quasi_identifier:
                label = QUASI_IDENTIFIER
            else:
                label = UNRECOGNISED
            grade = grade_of(label)
        columns.append(replace(col, grade=grade, label=label))
    dataset = _max_grade([c.grade for c in columns] + [declared_grade], grade_order)
    return replace(report, columns=tuple(columns), dataset_grade=dataset)


def _rank(grade: str | None, order: Sequence[str]) -> int:
    return order.index(grade) if grade in order else -1
